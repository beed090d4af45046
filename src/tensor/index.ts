export * from './autograd.js';
export * from './dtype.js';
export * from './shape.js';
export * from './tensor.js';
