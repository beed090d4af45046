/**
 * Spatial transformer networks (Jaderberg, Simonyan, Zisserman, Kavukcuoglu 2015): attention as a
 * learned geometric transformation. A localization net looks at the input and regresses the
 * parameters of a transform; a grid generator turns them into sampling positions; a bilinear
 * sampler (F.affineGrid / F.gridSample) reads the input there. Every step is differentiable, so the
 * module learns end to end from the task loss alone and drops into any network as a layer.
 *
 * Transforms, each initialized to the identity (the layer starts as a no-op resampling):
 * - 'affine':    6 free parameters, theta = [[a, b, tx], [c, d, ty]]
 * - 'attention': (s, tx, ty), theta = [[s, 0, tx], [0, s, ty]] (the paper's attention transform:
 *                an isotropic zoom plus a shift, i.e. a square crop)
 * - 'rts':       (angle, s, tx, ty), theta = [[s cos, -s sin, tx], [s sin, s cos, ty]]
 * - 'rotation':  (angle), theta = [[cos, -sin, 0], [sin, cos, 0]] (a turn about the center: the
 *                second stage of a series whose first stage centers the item)
 * - 'tps':       a thin-plate spline through an n x n grid of control points whose target positions
 *                the localization net predicts (2 n^2 parameters)
 *
 * Coordinates are F.affineGrid's: x, y in [-1, 1] across the input, theta maps output positions to
 * input positions.
 */
import { Conv2d } from '../nn/conv.js';
import { Linear } from '../nn/linear.js';
import { Module, ModuleList, type TensorModule } from '../nn/module.js';
import { BatchNorm2d } from '../nn/norm.js';
import { rand, tensor } from '../ops/creation.js';
import { add, cos, div, mul, neg, relu, sin, sqrt, sub } from '../ops/elementwise.js';
import { bmm, matmul } from '../ops/matmul.js';
import { softmax } from '../ops/normalization.js';
import { avgPool2d, maxPool2d } from '../ops/pool.js';
import { logsumexp, mean, sum } from '../ops/reduce.js';
import { affineGrid, type GridSampleOptions, gridSample } from '../ops/resample.js';
import { cat, expand, flatten, reshape, slice } from '../ops/shape.js';
import { isGradEnabled, noGrad } from '../tensor/autograd.js';
import { fmt } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';

export type StTransform = 'affine' | 'attention' | 'rts' | 'rotation' | 'tps';

/** The built-in localization nets. */
export type LocalizationKind = 'conv' | 'mlp' | 'moments';

export const LOCALIZATIONS: readonly LocalizationKind[] = ['conv', 'mlp', 'moments'];

export const TRANSFORMS: readonly StTransform[] = ['affine', 'attention', 'rts', 'rotation', 'tps'];

/** How many numbers the localization net regresses for a transform. */
export function transformParamCount(transform: StTransform, tpsGrid = 3): number {
  switch (transform) {
    case 'affine':
      return 6;
    case 'attention':
      return 3;
    case 'rts':
      return 4;
    case 'rotation':
      return 1;
    case 'tps':
      return 2 * tpsGrid * tpsGrid;
  }
}

/** Control points of an n x n thin-plate spline: a regular grid over [-1, 1]^2, (x, y) row-major. */
export function tpsControlPoints(n: number): Float64Array {
  if (!(Number.isInteger(n) && n >= 2))
    throw new Error(`tpsControlPoints: grid must be an integer >= 2, got ${n}`);
  const pts = new Float64Array(2 * n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      pts[2 * (i * n + j)] = -1 + (2 * j) / (n - 1);
      pts[2 * (i * n + j) + 1] = -1 + (2 * i) / (n - 1);
    }
  }
  return pts;
}

/** The parameters of the identity transform (what fc_loc's bias starts at). */
export function identityParams(transform: StTransform, tpsGrid = 3): Float32Array {
  switch (transform) {
    case 'affine':
      return Float32Array.of(1, 0, 0, 0, 1, 0);
    case 'attention':
      return Float32Array.of(1, 0, 0);
    case 'rts':
      return Float32Array.of(0, 1, 0, 0);
    case 'rotation':
      return Float32Array.of(0);
    case 'tps':
      return Float32Array.from(tpsControlPoints(tpsGrid));
  }
}

/** Columns of theta's (x row, y row) that the attention transform's (s, tx, ty) fill. */
const ATTENTION_TO_THETA = tensor(
  Float32Array.of(1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1),
  [3, 6],
);

/** theta (N, 2, 3) from the regressed parameters (N, P) of an affine-family transform. */
export function thetaFromParams(transform: Exclude<StTransform, 'tps'>, params: Tensor): Tensor {
  const N = params.shape[0];
  const expected = transformParamCount(transform);
  if (params.ndim !== 2 || params.shape[1] !== expected) {
    throw new Error(
      `thetaFromParams: '${transform}' needs params (N, ${expected}), got ${fmt(params.shape)}`,
    );
  }
  if (transform === 'affine') return reshape(params, [N, 2, 3]);
  if (transform === 'attention') return reshape(matmul(params, ATTENTION_TO_THETA), [N, 2, 3]);
  if (transform === 'rotation') {
    const [c, s] = [cos(params), sin(params)]; // (N, 1)
    const zero = mul(params, 0);
    return reshape(cat([c, neg(s), zero, s, c, zero], 1), [N, 2, 3]);
  }
  const col = (i: number) => slice(params, 1, i, i + 1); // (N, 1)
  const [angle, scale, tx, ty] = [col(0), col(1), col(2), col(3)];
  const sc = mul(scale, cos(angle));
  const ss = mul(scale, sin(angle));
  return reshape(cat([sc, neg(ss), tx, ss, sc, ty], 1), [N, 2, 3]);
}

/** Solves A X = B for square A (n, n) and B (n, m) by Gauss-Jordan with partial pivoting, in float64. */
function solve(a: Float64Array, b: Float64Array, n: number, m: number): Float64Array {
  const A = a.slice();
  const X = b.slice();
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(A[r * n + col]) > Math.abs(A[pivot * n + col])) pivot = r;
    if (Math.abs(A[pivot * n + col]) < 1e-12)
      throw new Error('tps: control points are degenerate (singular system)');
    if (pivot !== col) {
      for (let k = 0; k < n; k++) [A[col * n + k], A[pivot * n + k]] = [A[pivot * n + k], A[col * n + k]];
      for (let k = 0; k < m; k++) [X[col * m + k], X[pivot * m + k]] = [X[pivot * m + k], X[col * m + k]];
    }
    const inv = 1 / A[col * n + col];
    for (let k = 0; k < n; k++) A[col * n + k] *= inv;
    for (let k = 0; k < m; k++) X[col * m + k] *= inv;
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const f = A[r * n + col];
      if (f === 0) continue;
      for (let k = 0; k < n; k++) A[r * n + k] -= f * A[col * n + k];
      for (let k = 0; k < m; k++) X[r * m + k] -= f * X[col * m + k];
    }
  }
  return X;
}

/** The thin-plate radial basis U(r) = r^2 log r^2, from the squared distance. */
function tpsKernel(r2: number): number {
  return r2 > 0 ? r2 * Math.log(r2) : 0;
}

/**
 * The constant (P, K) matrix that maps K control-point targets to P sampling positions of a thin-plate
 * spline: the spline's coefficients are linear in the targets, (w; a) = L^-1 (C'; 0) with
 * L = [[U(|c_i - c_j|), [1 c_i]], [[1 c_j]^T, 0]], so grid = [U(|p - c_k|), 1, p] L^-1[:, :K] C'.
 */
export function tpsGridMatrix(points: Float32Array, control: Float64Array): Float32Array {
  const K = control.length / 2;
  const P = points.length / 2;
  const n = K + 3;
  const L = new Float64Array(n * n);
  for (let i = 0; i < K; i++) {
    const [xi, yi] = [control[2 * i], control[2 * i + 1]];
    for (let j = 0; j < K; j++) {
      L[i * n + j] = tpsKernel((xi - control[2 * j]) ** 2 + (yi - control[2 * j + 1]) ** 2);
    }
    const affine = [1, xi, yi];
    for (let k = 0; k < 3; k++) {
      L[i * n + K + k] = affine[k];
      L[(K + k) * n + i] = affine[k];
    }
  }
  // Right-hand side [I_K; 0]: the columns of L^-1 that multiply the targets.
  const rhs = new Float64Array(n * K);
  for (let i = 0; i < K; i++) rhs[i * K + i] = 1;
  const coef = solve(L, rhs, n, K); // (K + 3, K)
  const out = new Float32Array(P * K);
  const basis = new Float64Array(n);
  for (let p = 0; p < P; p++) {
    const [x, y] = [points[2 * p], points[2 * p + 1]];
    for (let k = 0; k < K; k++)
      basis[k] = tpsKernel((x - control[2 * k]) ** 2 + (y - control[2 * k + 1]) ** 2);
    basis[K] = 1;
    basis[K + 1] = x;
    basis[K + 2] = y;
    for (let k = 0; k < K; k++) {
      let s = 0;
      for (let r = 0; r < n; r++) s += basis[r] * coef[r * K + k];
      out[p * K + k] = s;
    }
  }
  return out;
}

/** A network that maps the ST's input (N, C, H, W) to a feature vector (N, outFeatures). */
export interface LocalizationFeatures extends TensorModule {
  readonly outFeatures: number;
}

export interface LocalizationOptions {
  /**
   * Max-pooling factor applied to the input first, so the net sees a coarse view (conv, mlp: default 2
   * for inputs >= 32 px, else 1; moments: default 1).
   */
  downsample?: number;
  /** conv: channels of the two conv layers (default [8, 16]). */
  channels?: readonly [number, number];
  /** Width of the hidden fully connected layer(s) (default 32). */
  hidden?: number;
  /** moments: max-pooling factor between the two convs, i.e. the moments are taken at 1/pool resolution (default 2). */
  pool?: number;
  /**
   * moments: how a channel's activations weigh positions, 'relu' (the activation itself, default) or
   * 'softmax' (a softmax over positions).
   */
  weighting?: 'relu' | 'softmax';
}

function defaultDownsample(inputSize: readonly [number, number]): number {
  return Math.min(...inputSize) >= 32 ? 2 : 1;
}

/** conv5 -> pool -> relu -> conv3 -> pool -> relu -> fc -> relu, the shape of the paper's CNN localization nets. */
export class ConvLocalization extends Module implements LocalizationFeatures {
  conv1: Conv2d;
  conv2: Conv2d;
  fc: Linear;
  readonly outFeatures: number;
  readonly downsample: number;

  constructor(inChannels: number, inputSize: readonly [number, number], options: LocalizationOptions = {}) {
    super();
    const [c1, c2] = options.channels ?? [8, 16];
    this.downsample = options.downsample ?? defaultDownsample(inputSize);
    this.conv1 = new Conv2d(inChannels, c1, 5, { padding: 2 });
    this.conv2 = new Conv2d(c1, c2, 3, { padding: 1 });
    const [h, w] = inputSize.map((s) => Math.floor(Math.floor(Math.floor(s / this.downsample) / 2) / 2));
    if (h < 1 || w < 1) {
      throw new Error(
        `ConvLocalization: input ${fmt(inputSize)} is too small for downsample ${this.downsample} and two 2x2 pools`,
      );
    }
    this.outFeatures = options.hidden ?? 32;
    this.fc = new Linear(c2 * h * w, this.outFeatures);
  }

  forward(x: Tensor): Tensor {
    let y = this.downsample > 1 ? maxPool2d(x, this.downsample) : x;
    y = relu(maxPool2d(this.conv1.forward(y), 2));
    y = relu(maxPool2d(this.conv2.forward(y), 2)); // (N, c2, h, w)
    return relu(this.fc.forward(flatten(y, 1)));
  }
}

/** flatten -> fc -> relu -> fc -> relu (the paper's FCN localization), on an average-pooled view. */
export class MlpLocalization extends Module implements LocalizationFeatures {
  fc1: Linear;
  fc2: Linear;
  readonly outFeatures: number;
  readonly downsample: number;

  constructor(inChannels: number, inputSize: readonly [number, number], options: LocalizationOptions = {}) {
    super();
    this.downsample = options.downsample ?? defaultDownsample(inputSize);
    const [h, w] = inputSize.map((s) => Math.floor(s / this.downsample));
    const hidden = options.hidden ?? 32;
    this.fc1 = new Linear(inChannels * h * w, hidden);
    this.fc2 = new Linear(hidden, hidden);
    this.outFeatures = hidden;
  }

  forward(x: Tensor): Tensor {
    const y = this.downsample > 1 ? avgPool2d(x, this.downsample) : x;
    return relu(this.fc2.forward(relu(this.fc1.forward(flatten(y, 1)))));
  }
}

/**
 * Pixel-center coordinates of an (h, w) grid in [-1, 1] (F.affineGrid's, alignCorners false): x and y
 * planes (1, 1, h, w) and their products xx, yy, xy.
 */
function coordinatePlanes(h: number, w: number): Record<'x' | 'y' | 'xx' | 'yy' | 'xy', Tensor> {
  const planes = { x: new Float32Array(h * w), y: new Float32Array(h * w) };
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      planes.x[i * w + j] = (2 * j + 1) / w - 1;
      planes.y[i * w + j] = (2 * i + 1) / h - 1;
    }
  }
  const t = (a: Float32Array) => tensor(a, [1, 1, h, w]);
  const prod = (a: Float32Array, b: Float32Array) => t(a.map((v, i) => v * b[i]));
  return {
    x: t(planes.x),
    y: t(planes.y),
    xx: prod(planes.x, planes.x),
    yy: prod(planes.y, planes.y),
    xy: prod(planes.x, planes.y),
  };
}

/**
 * A coordinate-aware localization net: conv5 -> [pool] -> relu -> conv3, then each channel's feature
 * map is reduced to where it is and how it is spread: its mass, centroid (x, y) and second central
 * moments (xx, yy, xy) in normalized coordinates, and an fc layer reads those 6 numbers per channel.
 * An item's orientation is a simple function of second moments (the principal axis), which a conv net
 * with an fc over flattened features has to learn for every position separately: supervised with the
 * true angle on the RTS canvas this net learns it about as fast as the conv net does on an exactly
 * centered crop (docs/stn/README.md).
 */
export class MomentLocalization extends Module implements LocalizationFeatures {
  conv1: Conv2d;
  conv2: Conv2d;
  fc: Linear;
  readonly outFeatures: number;
  readonly downsample: number;
  readonly pool: number;
  readonly weighting: 'relu' | 'softmax';
  private readonly coords: Record<'x' | 'y' | 'xx' | 'yy' | 'xy', Tensor>;

  constructor(inChannels: number, inputSize: readonly [number, number], options: LocalizationOptions = {}) {
    super();
    const [c1, c2] = options.channels ?? [8, 16];
    this.downsample = options.downsample ?? 1;
    this.pool = options.pool ?? 2;
    this.weighting = options.weighting ?? 'relu';
    if (this.weighting !== 'relu' && this.weighting !== 'softmax') {
      throw new Error(`MomentLocalization: weighting must be 'relu' or 'softmax', got '${this.weighting}'`);
    }
    const [h, w] = inputSize.map((s) => Math.floor(Math.floor(s / this.downsample) / this.pool));
    if (h < 1 || w < 1) {
      throw new Error(
        `MomentLocalization: input ${fmt(inputSize)} is too small for downsample ${this.downsample} and pool ${this.pool}`,
      );
    }
    this.conv1 = new Conv2d(inChannels, c1, 5, { padding: 2 });
    this.conv2 = new Conv2d(c1, c2, 3, { padding: 1 });
    this.outFeatures = options.hidden ?? 32;
    this.fc = new Linear(6 * c2, this.outFeatures);
    this.coords = coordinatePlanes(h, w);
  }

  /** (N, 6 C) features: per channel mass, centroid x, y, second central moments xx, yy, xy (x4, of order 1 for a centered item). */
  moments(x: Tensor): Tensor {
    let y = this.downsample > 1 ? maxPool2d(x, this.downsample) : x;
    y = this.conv1.forward(y);
    y = relu(this.pool > 1 ? maxPool2d(y, this.pool) : y);
    const z = this.conv2.forward(y); // (N, C, h, w)
    const [N, C, h, w] = z.shape;
    let weights: Tensor;
    let mass: Tensor;
    if (this.weighting === 'softmax') {
      // the softmax's normalizer, a smooth maximum of the map, stands for its mass
      const flat = reshape(z, [N, C, h * w]);
      weights = reshape(softmax(flat, 2), [N, C, h, w]);
      mass = sub(logsumexp(flat, 2), Math.log(h * w));
    } else {
      const a = relu(z);
      // the epsilon keeps an all-zero map's moments finite (zero)
      mass = add(mean(a, [2, 3]), 1e-3); // (N, C)
      weights = div(a, reshape(mass, [N, C, 1, 1]));
    }
    const avg = (plane: Tensor) =>
      this.weighting === 'softmax' ? sum(mul(weights, plane), [2, 3]) : mean(mul(weights, plane), [2, 3]);
    const mx = avg(this.coords.x);
    const my = avg(this.coords.y);
    const cxx = sub(avg(this.coords.xx), mul(mx, mx));
    const cyy = sub(avg(this.coords.yy), mul(my, my));
    const cxy = sub(avg(this.coords.xy), mul(mx, my));
    return cat([mass, mx, my, mul(cxx, 4), mul(cyy, 4), mul(cxy, 4)], 1);
  }

  forward(x: Tensor): Tensor {
    return relu(this.fc.forward(this.moments(x)));
  }
}

export interface SpatialTransformerOptions {
  /** Channels of the input. */
  inChannels: number;
  /** (H, W) of the input the localization net sees. */
  inputSize: readonly [number, number];
  /** (Ho, Wo) of the sampled output (default inputSize). */
  outputSize?: number | readonly [number, number];
  transform?: StTransform;
  /** Control points per side of the thin-plate spline (default 3). */
  tpsGrid?: number;
  /** 'conv' (default), 'mlp', 'moments' (MomentLocalization), or a module of one's own. */
  localization?: LocalizationKind | LocalizationFeatures;
  /** Sizes of the built-in localization nets. */
  localizationOptions?: LocalizationOptions;
  alignCorners?: boolean;
  paddingMode?: GridSampleOptions['paddingMode'];
  mode?: GridSampleOptions['mode'];
}

/** What one transformer did to a batch: the regressed parameters, the transform and its crop. */
export interface TransformerOutput {
  /** (N, C, Ho, Wo) sampled output. */
  output: Tensor;
  /** (N, P) regressed transform parameters. */
  params: Tensor;
  /** (N, 2, 3) affine matrix (output -> input coordinates); null for 'tps'. */
  theta: Tensor | null;
  /** (N, Ho, Wo, 2) sampling positions in the input, (x, y) in [-1, 1]. */
  grid: Tensor;
}

export class SpatialTransformer extends Module implements TensorModule {
  localization: LocalizationFeatures;
  /** Regresses the transform parameters; zero weights and the identity as bias at init. */
  fc_loc: Linear;
  readonly transform: StTransform;
  readonly inChannels: number;
  readonly inputSize: [number, number];
  readonly outputSize: [number, number];
  readonly numParams: number;
  readonly tpsGrid: number;
  private readonly sampleOptions: GridSampleOptions;

  get alignCorners(): boolean {
    return this.sampleOptions.alignCorners ?? false;
  }

  constructor(options: SpatialTransformerOptions) {
    super();
    const transform = options.transform ?? 'affine';
    if (!TRANSFORMS.includes(transform)) {
      throw new Error(
        `SpatialTransformer: unknown transform '${transform}'; use one of ${TRANSFORMS.join(', ')}`,
      );
    }
    const [h, w] = options.inputSize;
    if (!(Number.isInteger(h) && Number.isInteger(w) && h > 0 && w > 0)) {
      throw new Error(
        `SpatialTransformer: inputSize must be two positive integers, got ${fmt(options.inputSize)}`,
      );
    }
    const out = options.outputSize ?? options.inputSize;
    this.outputSize = typeof out === 'number' ? [out, out] : [out[0], out[1]];
    if (!this.outputSize.every((s) => Number.isInteger(s) && s > 0)) {
      throw new Error(
        `SpatialTransformer: outputSize must be positive integers, got ${fmt(this.outputSize)}`,
      );
    }
    this.transform = transform;
    this.inChannels = options.inChannels;
    this.inputSize = [h, w];
    this.tpsGrid = options.tpsGrid ?? 3;
    this.numParams = transformParamCount(transform, this.tpsGrid);
    const loc = options.localization ?? 'conv';
    if (typeof loc === 'string' && !LOCALIZATIONS.includes(loc)) {
      throw new Error(
        `SpatialTransformer: unknown localization '${loc}'; use one of ${LOCALIZATIONS.join(', ')} or a module`,
      );
    }
    this.localization =
      loc === 'conv'
        ? new ConvLocalization(options.inChannels, this.inputSize, options.localizationOptions)
        : loc === 'mlp'
          ? new MlpLocalization(options.inChannels, this.inputSize, options.localizationOptions)
          : loc === 'moments'
            ? new MomentLocalization(options.inChannels, this.inputSize, options.localizationOptions)
            : loc;
    this.fc_loc = new Linear(this.localization.outFeatures, this.numParams);
    this.resetToIdentity();
    this.sampleOptions = {
      mode: options.mode ?? 'bilinear',
      paddingMode: options.paddingMode ?? 'zeros',
      alignCorners: options.alignCorners ?? false,
    };
    if (transform === 'tps') {
      const [ho, wo] = this.outputSize;
      // The output's sampling positions are affineGrid's with the identity, so 'tps' at init equals 'affine' at init.
      const base = affineGrid(tensor(identityParams('affine'), [1, 2, 3]), [1, 1, ho, wo], {
        alignCorners: this.sampleOptions.alignCorners,
      });
      const matrix = tpsGridMatrix(base.data as Float32Array, tpsControlPoints(this.tpsGrid));
      this.registerBuffer('tps_matrix', tensor(matrix, [ho * wo, this.tpsGrid ** 2]), false);
    }
  }

  /** Zero regression weights, identity bias: the transformer outputs its input (resampled to outputSize). */
  resetToIdentity(): void {
    noGrad(() => {
      this.fc_loc.weight.data.fill(0);
      (this.fc_loc.bias as Tensor).data.set(identityParams(this.transform, this.tpsGrid));
    });
  }

  private checkInput(x: Tensor): void {
    const [h, w] = this.inputSize;
    if (x.ndim !== 4 || x.shape[1] !== this.inChannels || x.shape[2] !== h || x.shape[3] !== w) {
      throw new Error(
        `SpatialTransformer: expected input (N, ${this.inChannels}, ${h}, ${w}), got ${fmt(x.shape)}; the localization net is built for inputSize [${h}, ${w}]`,
      );
    }
  }

  /** (N, P) transform parameters for x (N, C, H, W). */
  predictParams(x: Tensor): Tensor {
    this.checkInput(x);
    return this.fc_loc.forward(this.localization.forward(x));
  }

  /** theta (N, 2, 3) and the sampling grid (N, Ho, Wo, 2) for given parameters (N, P). */
  gridFromParams(params: Tensor): { theta: Tensor | null; grid: Tensor } {
    const N = params.shape[0];
    const [ho, wo] = this.outputSize;
    if (this.transform === 'tps') {
      const K = this.tpsGrid ** 2;
      const targets = reshape(params, [N, K, 2]);
      const grid = matmul(this.buffer('tps_matrix'), targets); // (N, Ho * Wo, 2)
      return { theta: null, grid: reshape(grid, [N, ho, wo, 2]) };
    }
    const theta = thetaFromParams(this.transform, params);
    const grid = affineGrid(theta, [N, this.inChannels, ho, wo], {
      alignCorners: this.sampleOptions.alignCorners,
    });
    return { theta, grid };
  }

  /**
   * Localize, generate the grid, sample. `source` (default x) is what gets sampled: any (N, C', H', W')
   * image of the same batch, e.g. a higher-resolution copy of what the localization net saw.
   */
  forwardWithTransform(x: Tensor, source: Tensor = x): TransformerOutput {
    const params = this.predictParams(x);
    const { theta, grid } = this.gridFromParams(params);
    if (source.ndim !== 4 || source.shape[0] !== x.shape[0]) {
      throw new Error(
        `SpatialTransformer: source ${fmt(source.shape)} must be (N, C, H, W) with the batch of x ${fmt(x.shape)}`,
      );
    }
    return { output: this.sample(source, grid), params, theta, grid };
  }

  /** The sampler alone: reads source (N, C, H, W) at grid (N, Ho, Wo, 2) with this layer's mode and padding. */
  sample(source: Tensor, grid: Tensor): Tensor {
    return gridSample(source, grid, this.sampleOptions);
  }

  forward(x: Tensor): Tensor {
    return this.forwardWithTransform(x).output;
  }
}

/** A row [0, 0, 1] that turns a (N, 2, 3) theta into its (N, 3, 3) homogeneous matrix. */
const HOMOGENEOUS_ROW = tensor(Float32Array.of(0, 0, 1), [1, 1, 3]);

/**
 * The affine map T o S: theta (N, 2, 3) of sampling first through S (output -> intermediate), then
 * through T (intermediate -> input), [A_T A_S, A_T t_S + t_T].
 */
export function composeThetas(outer: Tensor, inner: Tensor): Tensor {
  if (
    outer.ndim !== 3 ||
    inner.ndim !== 3 ||
    outer.shape[0] !== inner.shape[0] ||
    outer.shape[1] !== 2 ||
    outer.shape[2] !== 3 ||
    inner.shape[1] !== 2 ||
    inner.shape[2] !== 3
  ) {
    throw new Error(
      `composeThetas: expected two (N, 2, 3) thetas, got ${fmt(outer.shape)} and ${fmt(inner.shape)}`,
    );
  }
  const N = inner.shape[0];
  return bmm(outer, cat([inner, expand(HOMOGENEOUS_ROW, [N, 1, 3])], 1));
}

/** What a series of transformers did: the composed transform, and each stage's own. */
export interface SeriesTransformerOutput extends TransformerOutput {
  /** Each stage's output (what the next stage's localization net sees), parameters and own theta. */
  stages: TransformerOutput[];
}

/**
 * Spatial transformers in series (an iterative ST): stage k + 1's localization net looks at what
 * stages 1..k sampled, and its transform is composed with theirs. The source is sampled once, through
 * the composed transform, so nothing blurs twice and what an earlier crop cut off stays reachable.
 * A use: an 'attention' stage that centers and zooms, then an 'rts' stage that judges the item's
 * orientation on that centered crop, where it is much easier to see than on the whole canvas.
 */
export class SeriesSpatialTransformer extends Module implements TensorModule {
  stages: ModuleList<SpatialTransformer>;
  readonly numStages: number;

  constructor(stages: SpatialTransformer[]) {
    super();
    if (stages.length === 0) throw new Error('SeriesSpatialTransformer: needs at least one stage');
    stages.forEach((st, k) => {
      if (st.transform === 'tps') {
        throw new Error(
          `SeriesSpatialTransformer: stage ${k + 1} is 'tps'; stages must be affine-family (affine, attention, rts) to compose`,
        );
      }
      const prev = stages[k - 1];
      if (
        prev &&
        (st.inputSize[0] !== prev.outputSize[0] ||
          st.inputSize[1] !== prev.outputSize[1] ||
          st.inChannels !== prev.inChannels)
      ) {
        throw new Error(
          `SeriesSpatialTransformer: stage ${k + 1} takes (${st.inChannels}, ${fmt(st.inputSize)}) but stage ${k} outputs (${prev.inChannels}, ${fmt(prev.outputSize)}); build each stage with inputSize = the previous outputSize`,
        );
      }
    });
    this.stages = new ModuleList(stages);
    this.numStages = stages.length;
  }

  get outputSize(): [number, number] {
    return this.stages.at(this.numStages - 1).outputSize;
  }

  get inputSize(): [number, number] {
    return this.stages.at(0).inputSize;
  }

  forwardWithTransform(x: Tensor, source: Tensor = x): SeriesTransformerOutput {
    const stages: TransformerOutput[] = [];
    let view = x;
    let theta: Tensor | null = null;
    let grid: Tensor | null = null;
    for (const [k, st] of this.stages.toArray().entries()) {
      const params = st.predictParams(view);
      const own = thetaFromParams(st.transform as Exclude<StTransform, 'tps'>, params);
      theta = theta ? composeThetas(theta, own) : own;
      const [ho, wo] = st.outputSize;
      grid = affineGrid(theta, [x.shape[0], st.inChannels, ho, wo], { alignCorners: st.alignCorners });
      const last = k === this.numStages - 1;
      // the next stage's localization net sees x through everything so far; the last stage samples source
      view = st.sample(last ? source : x, grid);
      stages.push({ output: view, params, theta: own, grid });
    }
    return {
      output: view,
      params: cat(
        stages.map((s) => s.params),
        1,
      ),
      theta,
      grid: grid as Tensor,
      stages,
    };
  }

  forward(x: Tensor): Tensor {
    return this.forwardWithTransform(x).output;
  }
}

/**
 * K spatial transformers side by side on the same input, their outputs concatenated along channels
 * (the paper's 2xST-CNN): each head has its own localization net and can learn to look at a
 * different part.
 */
export class MultiHeadSpatialTransformer extends Module implements TensorModule {
  heads: ModuleList<SpatialTransformer>;
  readonly numHeads: number;
  readonly outChannels: number;

  constructor(numHeads: number, options: SpatialTransformerOptions) {
    super();
    if (!(Number.isInteger(numHeads) && numHeads >= 1)) {
      throw new Error(`MultiHeadSpatialTransformer: numHeads must be a positive integer, got ${numHeads}`);
    }
    if (typeof options.localization === 'object') {
      throw new Error(
        "MultiHeadSpatialTransformer: pass localization as 'conv', 'mlp' or 'moments' (each head builds its own net); for custom nets build the SpatialTransformers and use their outputs directly",
      );
    }
    this.numHeads = numHeads;
    this.heads = new ModuleList(Array.from({ length: numHeads }, () => new SpatialTransformer(options)));
    this.outChannels = numHeads * options.inChannels;
  }

  get outputSize(): [number, number] {
    return this.heads.at(0).outputSize;
  }

  /** Every head's output and transform, and their channel concatenation (N, K * C, Ho, Wo). */
  forwardHeads(x: Tensor, source: Tensor = x): { output: Tensor; heads: TransformerOutput[] } {
    const heads = this.heads.toArray().map((h) => h.forwardWithTransform(x, source));
    return {
      output: cat(
        heads.map((h) => h.output),
        1,
      ),
      heads,
    };
  }

  forward(x: Tensor): Tensor {
    return this.forwardHeads(x).output;
  }
}

export interface StnClassifierOptions {
  /** (H, W) of the input images. */
  inputSize: readonly [number, number];
  inChannels?: number;
  numClasses?: number;
  /** Spatial transformers in front of the CNN: 0 (the CNN baseline), 1 (ST-CNN) or K (K x ST-CNN). */
  heads?: number;
  transform?: StTransform;
  /**
   * Transformers in series in front of the CNN (heads = 1 only): their transforms, first to last
   * (default [transform]). ['attention', 'rts'] centers and zooms, then turns the centered crop.
   */
  stages?: readonly StTransform[];
  /** What the transformer samples (default inputSize). */
  stOutputSize?: number | readonly [number, number];
  localization?: LocalizationKind;
  /** The localization net of each of `stages`, first to last (default: `localization` for every stage). */
  stageLocalization?: readonly LocalizationKind[];
  localizationOptions?: LocalizationOptions;
  tpsGrid?: number;
  /** Channels of the classifier's two conv layers (default [8, 16]). */
  channels?: readonly [number, number];
  /** Width of the classifier's hidden fully connected layer (default 32). */
  hidden?: number;
  /** Batch norm after each of the classifier's convs (default false). */
  batchNorm?: boolean;
}

/** Stages of one transformer series: the first sees the input, each next one the previous output. */
function seriesOf(
  stages: readonly StTransform[],
  options: SpatialTransformerOptions,
  localization?: readonly LocalizationKind[],
): SeriesSpatialTransformer {
  const out = options.outputSize ?? options.inputSize;
  const size: [number, number] = typeof out === 'number' ? [out, out] : [out[0], out[1]];
  return new SeriesSpatialTransformer(
    stages.map(
      (transform, k) =>
        new SpatialTransformer({
          ...options,
          transform,
          inputSize: k === 0 ? options.inputSize : size,
          localization: localization?.[k] ?? options.localization,
        }),
    ),
  );
}

/**
 * The CNN of the comparison, optionally behind spatial transformers: [ST x K] -> conv5 [-> bn] ->
 * pool -> relu -> conv3 [-> bn] -> pool -> relu -> fc -> relu -> head. The CNN baseline is heads = 0.
 */
export class StnClassifier extends Module implements TensorModule {
  st: SpatialTransformer | MultiHeadSpatialTransformer | SeriesSpatialTransformer | null;
  conv1: Conv2d;
  bn1: BatchNorm2d | null;
  conv2: Conv2d;
  bn2: BatchNorm2d | null;
  fc1: Linear;
  head: Linear;
  readonly numClasses: number;
  readonly numFeatures: number;
  readonly numHeads: number;

  constructor(options: StnClassifierOptions) {
    super();
    const inChannels = options.inChannels ?? 1;
    const heads = options.heads ?? 0;
    if (!(Number.isInteger(heads) && heads >= 0))
      throw new Error(`StnClassifier: heads must be a non-negative integer, got ${heads}`);
    const stOptions: SpatialTransformerOptions = {
      inChannels,
      inputSize: options.inputSize,
      outputSize: options.stOutputSize,
      transform: options.transform,
      localization: options.localization,
      localizationOptions: options.localizationOptions,
      tpsGrid: options.tpsGrid,
    };
    const stages = options.stages ?? [stOptions.transform ?? 'affine'];
    if (options.stageLocalization && options.stageLocalization.length !== stages.length) {
      throw new Error(
        `StnClassifier: stageLocalization names ${options.stageLocalization.length} nets for ${stages.length} stages (${stages.join(', ')}); give one per stage`,
      );
    }
    if (stages.length > 1 && heads !== 1) {
      throw new Error(
        `StnClassifier: transformers in series (stages ${stages.join(', ')}) need heads = 1, got heads = ${heads}`,
      );
    }
    this.st =
      heads === 0
        ? null
        : stages.length > 1
          ? seriesOf(stages, stOptions, options.stageLocalization)
          : heads === 1
            ? new SpatialTransformer(stOptions)
            : new MultiHeadSpatialTransformer(heads, stOptions);
    this.numHeads = heads;
    const bodyChannels = Math.max(heads, 1) * inChannels;
    const [h, w] = this.st ? this.st.outputSize : options.inputSize;
    const [c1, c2] = options.channels ?? [8, 16];
    this.conv1 = new Conv2d(bodyChannels, c1, 5, { padding: 2 });
    this.bn1 = options.batchNorm ? new BatchNorm2d(c1) : null;
    this.conv2 = new Conv2d(c1, c2, 3, { padding: 1 });
    this.bn2 = options.batchNorm ? new BatchNorm2d(c2) : null;
    const flat = c2 * Math.floor(Math.floor(h / 2) / 2) * Math.floor(Math.floor(w / 2) / 2);
    if (flat === 0) throw new Error(`StnClassifier: the CNN needs at least 4x4 inputs, got ${h}x${w}`);
    this.numFeatures = options.hidden ?? 32;
    this.fc1 = new Linear(flat, this.numFeatures);
    this.numClasses = options.numClasses ?? 10;
    this.head = new Linear(this.numFeatures, this.numClasses);
  }

  /** What the single or series transformer did to the last batch rectify() saw with gradients on. */
  private lastTransformed: { input: Tensor; output: TransformerOutput } | null = null;

  /** The transformers' outputs, concatenated along channels (the input itself for the baseline). */
  rectify(x: Tensor): Tensor {
    if (!this.st) return x;
    if (this.st instanceof MultiHeadSpatialTransformer) return this.st.forward(x);
    const transformed = this.st.forwardWithTransform(x);
    this.lastTransformed = isGradEnabled() ? { input: x, output: transformed } : null;
    return transformed.output;
  }

  /**
   * transformers(x)[0] for a single or series transformer, reusing (graph and all) what the last
   * forward with gradients computed when x is that same batch: a training step's extra loss terms
   * then add no second pass of the localization nets.
   */
  transformedFor(x: Tensor): TransformerOutput {
    const last = this.lastTransformed;
    if (last && last.input === x && isGradEnabled()) return last.output;
    return this.transformers(x)[0];
  }

  /** Pre-logit features (N, hidden). */
  forwardFeatures(x: Tensor): Tensor {
    const norm = (bn: BatchNorm2d | null, t: Tensor) => (bn ? bn.forward(t) : t);
    let y = relu(maxPool2d(norm(this.bn1, this.conv1.forward(this.rectify(x))), 2));
    y = relu(maxPool2d(norm(this.bn2, this.conv2.forward(y)), 2)); // (N, c2, h / 4, w / 4)
    return relu(this.fc1.forward(flatten(y, 1)));
  }

  forwardHead(features: Tensor): Tensor {
    return this.head.forward(features);
  }

  forward(x: Tensor): Tensor {
    return this.forwardHead(this.forwardFeatures(x));
  }

  /** Every transformer's output and transform for x (empty for the baseline). */
  transformers(x: Tensor): TransformerOutput[] {
    if (!this.st) return [];
    if (this.st instanceof SpatialTransformer || this.st instanceof SeriesSpatialTransformer)
      return [this.st.forwardWithTransform(x)];
    return this.st.forwardHeads(x).heads;
  }

  /** The localization nets' parameters (for a separate learning rate) and the rest. */
  parameterGroups(): { localization: Tensor[]; classifier: Tensor[] } {
    const loc = new Set<Tensor>(this.st ? this.st.parameters() : []);
    return {
      localization: [...loc],
      classifier: this.parameters().filter((p) => !loc.has(p)),
    };
  }
}

/** The unit vector (cos a, sin a) of the turn in each theta's linear part: (A00 + A11, A10 - A01) normalized, exact for scaled rotations. */
function turnOf(theta: Tensor): [Tensor, Tensor] {
  const at = (i: number, j: number) => slice(slice(theta, 1, i, i + 1), 2, j, j + 1); // (N, 1, 1)
  const c = add(at(0, 0), at(1, 1));
  const s = sub(at(1, 0), at(0, 1));
  const norm = sqrt(add(add(mul(c, c), mul(s, s)), 1e-12));
  return [div(c, norm), div(s, norm)];
}

export interface EquivarianceOptions {
  /** The copies are turned by angles drawn uniformly from [-maxAngle, maxAngle], radians (default pi/4). */
  maxAngle?: number;
  /** The transform for x when the caller has it already (stnTheta(model, x)); computed otherwise. */
  theta?: Tensor;
}

/**
 * A self-supervised rotation-equivariance term for an ST-CNN's transformer (one ST or a series, of
 * the affine family): each image x is also shown turned by a random angle delta about the canvas
 * center (x'(p) = x(R(delta) p), sampled through F.affineGrid), and the transform predicted for x'
 * should be the one for x turned back, theta' = R(delta)^T theta, which samples the same output from
 * x' as theta does from x. Only the turn is compared: with a and a' the angles of theta's and
 * theta''s linear parts, the term is the batch mean of 1 - cos(a' - a + delta), which no transform
 * can lower by shrinking. It uses no label and no true angle; it teaches the localization net to
 * track the item's orientation, which the classification loss rewards only weakly. x' is drawn from
 * the global generator (the trainer seeds it per step).
 */
export function rotationEquivarianceLoss(
  model: StnClassifier,
  x: Tensor,
  options: EquivarianceOptions = {},
): Tensor {
  const maxAngle = options.maxAngle ?? Math.PI / 4;
  if (!(maxAngle > 0 && maxAngle <= Math.PI))
    throw new Error(`rotationEquivarianceLoss: maxAngle must be in (0, pi] radians, got ${maxAngle}`);
  if (!model.st || model.st instanceof MultiHeadSpatialTransformer)
    throw new Error(
      'rotationEquivarianceLoss: needs a StnClassifier with one transformer or a series (not parallel heads, not the CNN)',
    );
  const N = x.shape[0];
  const delta = noGrad(() => mul(sub(mul(rand([N, 1]), 2), 1), maxAngle)); // (N, 1)
  const turned = noGrad(() =>
    gridSample(x, affineGrid(thetaFromParams('rotation', delta), x.shape), { alignCorners: false }),
  );
  const theta = options.theta ?? stnTheta(model, x);
  return mean(turnMismatch(theta, stnTheta(model, turned), delta));
}

/** The composed transform (N, 2, 3) of an ST-CNN's (single or series) transformer for x. */
export function stnTheta(model: StnClassifier, x: Tensor): Tensor {
  const { theta } = model.transformers(x)[0];
  if (!theta) throw new Error("the 'tps' transform has no turn to compare");
  return theta;
}

/** The batch's labels (N) as class indices, each checked to lie in 0..K-1. */
function classIndices(labels: Tensor, N: number, K: number, owner: string): Int32Array {
  if (labels.size !== N) throw new Error(`${owner}: ${labels.size} labels for ${N} images`);
  const out = new Int32Array(N);
  for (let i = 0; i < N; i++) {
    const k = Number(labels.data[i]);
    if (!(Number.isInteger(k) && k >= 0 && k < K))
      throw new Error(`${owner}: label ${k} outside 0..${K - 1}`);
    out[i] = k;
  }
  return out;
}

/**
 * A running mean per class of `size` values (an exponential moving average with the given momentum;
 * a class's first batch mean replaces its zeros). The bookkeeping of ClassTurnPrior and
 * ClassTemplateAlignment.
 */
class ClassRunningMeans {
  readonly values: Float64Array;
  readonly seen: Uint8Array;

  constructor(
    readonly numClasses: number,
    readonly size: number,
    private readonly momentum: number,
  ) {
    this.values = new Float64Array(numClasses * size);
    this.seen = new Uint8Array(numClasses);
  }

  /** Class k's running mean, a view of `size` values. */
  row(k: number): Float64Array {
    return this.values.subarray(k * this.size, (k + 1) * this.size);
  }

  /** Per class, the batch mean of its rows of data (N x size), and how many rows it had. */
  batchMeans(classes: Int32Array, data: ArrayLike<number>): { means: Float64Array; counts: Float64Array } {
    const { size } = this;
    const means = new Float64Array(this.numClasses * size);
    const counts = new Float64Array(this.numClasses);
    classes.forEach((k, i) => {
      counts[k]++;
      for (let j = 0; j < size; j++) means[k * size + j] += data[i * size + j];
    });
    for (let k = 0; k < this.numClasses; k++)
      for (let j = 0; j < size && counts[k]; j++) means[k * size + j] /= counts[k];
    return { means, counts };
  }

  /** Folds in a batch's class means (from batchMeans). */
  update({ means, counts }: { means: Float64Array; counts: Float64Array }): void {
    for (let k = 0; k < this.numClasses; k++) {
      if (!counts[k]) continue;
      const m = this.seen[k] ? this.momentum : 0;
      const row = this.row(k);
      for (let j = 0; j < this.size; j++) row[j] = m * row[j] + (1 - m) * means[k * this.size + j];
      this.seen[k] = 1;
    }
  }
}

export interface ClassTurnPriorOptions {
  /** Momentum of each class's running mean turn (default 0.98). */
  momentum?: number;
}

/**
 * A prior on an ST-CNN's turns: the distortion turns every class's items symmetrically about
 * upright, so the turn a transformer applies should average to zero within each class. It keeps a
 * running mean of each class's turn as a unit vector (cos, sin), whose angle phi_k is that class's
 * mean turn, and returns mean_i phi_{y_i} a_i, whose gradient pushes each item's turn a_i against
 * its class's running offset, in proportion to it: the mean turn has one stable point, zero (a
 * prior on the mean sin(turn) would also hold a class turned upside down). Equivariance alone brings
 * each item to one orientation of its own; this moves each class's orientation to upright. Uses the
 * labels the classifier is trained with, no true angle.
 */
export class ClassTurnPrior {
  /** Per class, the running mean (cos, sin) of its turns. */
  private readonly turns: ClassRunningMeans;

  constructor(numClasses: number, options: ClassTurnPriorOptions = {}) {
    const momentum = options.momentum ?? 0.98;
    if (!(momentum >= 0 && momentum < 1))
      throw new Error(`ClassTurnPrior: momentum must be in [0, 1), got ${momentum}`);
    this.turns = new ClassRunningMeans(numClasses, 2, momentum);
  }

  /** Each class's running mean turn, radians in (-pi, pi] (0 before the class is seen). */
  get meanTurns(): Float64Array {
    const { turns } = this;
    return Float64Array.from({ length: turns.numClasses }, (_, k) =>
      turns.seen[k] ? Math.atan2(turns.values[2 * k + 1], turns.values[2 * k]) : 0,
    );
  }

  /**
   * Updates the running means with the batch's turns (labels (N) class indices) and returns the term;
   * `theta` is stnTheta(model, x) when the caller has it already.
   */
  loss(model: StnClassifier, x: Tensor, labels: Tensor, theta: Tensor = stnTheta(model, x)): Tensor {
    const N = x.shape[0];
    const classes = classIndices(labels, N, this.turns.numClasses, 'ClassTurnPrior');
    const [ca, sa] = turnOf(theta); // (N, 1, 1)
    const unit = new Float64Array(2 * N);
    for (let i = 0; i < N; i++) {
      unit[2 * i] = ca.data[i];
      unit[2 * i + 1] = sa.data[i];
    }
    this.turns.update(this.turns.batchMeans(classes, unit));
    const phi = this.meanTurns;
    const weights = new Float32Array(N);
    const angles = new Float32Array(N);
    for (let i = 0; i < N; i++) {
      weights[i] = phi[classes[i]];
      angles[i] = Math.atan2(sa.data[i], ca.data[i]);
    }
    // a_i as a value, plus c' s - s' c (primes: detached), which is 0 and has a_i's gradient on the unit circle
    const [c0, s0] = noGrad(() => [ca.detach(), sa.detach()]);
    const turn = add(tensor(angles, [N, 1, 1]), sub(mul(c0, sa), mul(s0, ca)));
    return mean(mul(turn, tensor(weights, [N, 1, 1])));
  }
}

export interface ClassTemplateOptions {
  /** Momentum of each class's running mean output (default 0.99). */
  momentum?: number;
}

/**
 * Congealing (Learned-Miller, "Data driven image models through continuous joint alignment", 2006)
 * per class, as a loss on an ST-CNN: each class keeps a running mean of the transformer's outputs
 * (its template, (C, Ho, Wo)), and every output is pulled toward its class's template by the mean
 * squared difference, through the sampler into the transform. The template starts as the mean of
 * the distorted items, which the symmetric distortion leaves upright and blurred; as the outputs
 * align it sharpens, and an item turned 20 degrees off it costs more than one turned 5. Where
 * equivariance only asks every item to be turned consistently, this asks every item of a class to
 * be turned the same way as the others, which a shoe's outline or a garment's sleeves pin down.
 * In a series, only the last stage is moved by it: the earlier stages' transform is detached, so the
 * term cannot shrink the item (a zoom out would lower every difference). Uses the labels the
 * classifier is trained with, no true angle.
 */
export class ClassTemplateAlignment {
  /** The templates, one row of C * Ho * Wo per class (allocated at the first batch). */
  private templates: ClassRunningMeans | null = null;
  private readonly momentum: number;
  readonly numClasses: number;

  constructor(numClasses: number, options: ClassTemplateOptions = {}) {
    this.momentum = options.momentum ?? 0.99;
    if (!(this.momentum >= 0 && this.momentum < 1))
      throw new Error(`ClassTemplateAlignment: momentum must be in [0, 1), got ${this.momentum}`);
    this.numClasses = numClasses;
  }

  /** Class k's template as (C * Ho * Wo) values (empty before the first batch, zeros before the class is seen). */
  template(k: number): Float64Array {
    return this.templates ? this.templates.row(k) : new Float64Array(0);
  }

  /**
   * Updates the templates with the batch's outputs (labels (N) class indices) and returns the mean
   * squared difference of each output from its class's template (the templates as they were before
   * the update, so that a batch is not pulled toward itself; for a class seen for the first time, its
   * batch mean). `transformed` is the model's transformers(x)[0] when the caller has it already.
   */
  loss(model: StnClassifier, x: Tensor, labels: Tensor, transformed?: TransformerOutput): Tensor {
    const out = alignedOutput(model, x, transformed);
    const [N, ...rest] = out.shape;
    const size = rest.reduce((a, b) => a * b, 1);
    const classes = classIndices(labels, N, this.numClasses, 'ClassTemplateAlignment');
    this.templates ??= new ClassRunningMeans(this.numClasses, size, this.momentum);
    const templates = this.templates;
    if (templates.size !== size)
      throw new Error(`ClassTemplateAlignment: outputs of ${size} values, templates of ${templates.size}`);
    const batch = templates.batchMeans(classes, out.data);
    const targets = new Float32Array(N * size);
    classes.forEach((k, i) => {
      targets.set(
        templates.seen[k] ? templates.row(k) : batch.means.subarray(k * size, (k + 1) * size),
        i * size,
      );
    });
    templates.update(batch);
    const diff = sub(out, tensor(targets, out.shape));
    return mean(mul(diff, diff));
  }
}

/**
 * What a transformer samples from x where only its last stage can move: for a series, x sampled
 * through the earlier stages' transform (detached) composed with the last stage's own; for a single
 * transformer, its output.
 */
export function alignedOutput(model: StnClassifier, x: Tensor, transformed?: TransformerOutput): Tensor {
  const st = model.st;
  if (!st || st instanceof MultiHeadSpatialTransformer)
    throw new Error(
      'alignedOutput: needs a StnClassifier with one transformer or a series (not parallel heads, not the CNN)',
    );
  const t = transformed ?? model.transformers(x)[0];
  if (!(st instanceof SeriesSpatialTransformer) || st.numStages === 1) return t.output;
  const { stages } = t as SeriesTransformerOutput;
  let prefix = stages[0].theta as Tensor;
  for (let k = 1; k < stages.length - 1; k++) prefix = composeThetas(prefix, stages[k].theta as Tensor);
  const last = st.stages.at(st.numStages - 1);
  const theta = composeThetas(prefix.detach(), stages[stages.length - 1].theta as Tensor);
  const [ho, wo] = last.outputSize;
  return last.sample(
    x,
    affineGrid(theta, [x.shape[0], last.inChannels, ho, wo], { alignCorners: last.alignCorners }),
  );
}

/**
 * Per sample, 1 - cos(a' - a + delta): how far theta' (N, 2, 3), predicted for an image turned by
 * delta (N, 1) radians, is from theta turned back (a and a' the angles of their linear parts). 0 for
 * theta' = R(delta)^T theta; independent of scale and translation. Returns (N, 1, 1).
 */
export function turnMismatch(theta: Tensor, turnedTheta: Tensor, delta: Tensor): Tensor {
  const N = theta.shape[0];
  const [ca, sa] = turnOf(theta);
  const [cb, sb] = turnOf(turnedTheta);
  const d = reshape(delta, [N, 1, 1]);
  const [cd, sd] = noGrad(() => [cos(d), sin(d)]);
  // (cos, sin) of a - delta, the angle theta' should have.
  const ct = add(mul(ca, cd), mul(sa, sd));
  const st = sub(mul(sa, cd), mul(ca, sd));
  return sub(1, add(mul(cb, ct), mul(sb, st)));
}
