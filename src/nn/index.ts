/** The `nn` namespace: modules with torch's parameter names, and initializers under `nn.init`. */
import * as init from './init.js';

export { init };
export * from './attention.js';
export * from './conv.js';
export * from './layers.js';
export * from './linear.js';
export * from './loss.js';
export * from './module.js';
export * from './norm.js';
export * from './transformer.js';
