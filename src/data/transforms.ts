/**
 * Training augmentations and preprocessing on single images (C, H, W) in [0, 1], and Mixup/CutMix on
 * whole batches. Every random choice draws from the Generator passed in, so a batch is a pure
 * function of its seed (what makes a resumed run repeat the same data). Transforms never modify
 * their input: datasets may hand out cached images.
 */
import type { Generator } from '../ops/creation.js';
import type { Image } from './dataset.js';

export type Transform = (image: Image, rng: Generator) => Image;

/** Applies transforms left to right. */
export function compose(transforms: readonly Transform[]): Transform {
  return (image, rng) => transforms.reduce((img, t) => t(img, rng), image);
}

function blank(like: Image, fill = 0): Image {
  const data = new Float32Array(like.channels * like.height * like.width);
  if (fill !== 0) data.fill(fill);
  return { data, channels: like.channels, height: like.height, width: like.width };
}

function withData(like: Image, data: Float32Array): Image {
  return { data, channels: like.channels, height: like.height, width: like.width };
}

/** torchvision's RandomCrop(size, padding): pad every side by `padding` with `fill`, then crop `size` at a random offset. */
export function randomCrop(
  size: number | readonly [number, number],
  options: { padding?: number; fill?: number } = {},
): Transform {
  const [ch, cw] = typeof size === 'number' ? [size, size] : size;
  const pad = options.padding ?? 0;
  const fill = options.fill ?? 0;
  return (img, rng) => {
    const ph = img.height + 2 * pad;
    const pw = img.width + 2 * pad;
    if (ch > ph || cw > pw) {
      throw new Error(`randomCrop: crop ${ch}x${cw} is larger than the padded image ${ph}x${pw}`);
    }
    const top = rng.int(0, ph - ch + 1) - pad;
    const left = rng.int(0, pw - cw + 1) - pad;
    const out: Image = {
      data: new Float32Array(img.channels * ch * cw),
      channels: img.channels,
      height: ch,
      width: cw,
    };
    for (let c = 0; c < img.channels; c++) {
      for (let y = 0; y < ch; y++) {
        const sy = y + top;
        for (let x = 0; x < cw; x++) {
          const sx = x + left;
          const inside = sy >= 0 && sy < img.height && sx >= 0 && sx < img.width;
          out.data[(c * ch + y) * cw + x] = inside ? img.data[(c * img.height + sy) * img.width + sx] : fill;
        }
      }
    }
    return out;
  };
}

/** Mirrors left-right with probability p. */
export function randomHorizontalFlip(p = 0.5): Transform {
  return (img, rng) => {
    if (rng.next() >= p) return img;
    const out = blank(img);
    const { width: w } = img;
    for (let row = 0; row < img.channels * img.height; row++) {
      for (let x = 0; x < w; x++) out.data[row * w + x] = img.data[row * w + (w - 1 - x)];
    }
    return out;
  };
}

/** Mirrors top-bottom with probability p. */
export function randomVerticalFlip(p = 0.5): Transform {
  return (img, rng) => {
    if (rng.next() >= p) return img;
    const out = blank(img);
    const { width: w, height: h } = img;
    for (let c = 0; c < img.channels; c++) {
      for (let y = 0; y < h; y++) {
        const src = (c * h + (h - 1 - y)) * w;
        out.data.set(img.data.subarray(src, src + w), (c * h + y) * w);
      }
    }
    return out;
  };
}

/** (x - mean[c]) / std[c] per channel. */
export function normalize(mean: readonly number[], std: readonly number[]): Transform {
  return (img) => {
    if (mean.length !== img.channels || std.length !== img.channels) {
      throw new Error(
        `normalize: mean/std have ${mean.length}/${std.length} values but the image has ${img.channels} channels`,
      );
    }
    const out = blank(img);
    const plane = img.height * img.width;
    for (let c = 0; c < img.channels; c++) {
      const m = mean[c];
      const s = std[c];
      for (let i = c * plane; i < (c + 1) * plane; i++) out.data[i] = (img.data[i] - m) / s;
    }
    return out;
  };
}

// ---- RandAugment (torchvision.transforms.RandAugment: 14 ops, magnitude bins) ----

/**
 * Samples an affine map with nearest-neighbour lookup around the image center (torchvision's default
 * interpolation for RandAugment). `inverse` maps output (x, y) relative to the center to input coords.
 */
function warp(img: Image, inverse: [number, number, number, number, number, number], fill: number): Image {
  const out = blank(img);
  const { width: w, height: h } = img;
  const cx = (w - 1) / 2;
  const cy = (h - 1) / 2;
  const [a, b, tx, c, d, ty] = inverse;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const dx = x - cx;
      const dy = y - cy;
      const sx = Math.round(a * dx + b * dy + tx + cx);
      const sy = Math.round(c * dx + d * dy + ty + cy);
      const inside = sx >= 0 && sx < w && sy >= 0 && sy < h;
      for (let ch = 0; ch < img.channels; ch++) {
        out.data[(ch * h + y) * w + x] = inside ? img.data[(ch * h + sy) * w + sx] : fill;
      }
    }
  }
  return out;
}

function mapPixels(img: Image, f: (v: number, channel: number) => number): Image {
  const out = blank(img);
  const plane = img.height * img.width;
  for (let i = 0; i < img.data.length; i++) out.data[i] = f(img.data[i], Math.floor(i / plane));
  return out;
}

const clamp01 = (v: number) => Math.min(1, Math.max(0, v));

/** Blends with `other` like PIL's ImageEnhance: other + factor * (img - other), clamped to [0, 1]. */
function blend(img: Image, other: Float32Array | number, factor: number): Image {
  const out = blank(img);
  for (let i = 0; i < img.data.length; i++) {
    const o = typeof other === 'number' ? other : other[i];
    out.data[i] = clamp01(o + factor * (img.data[i] - o));
  }
  return out;
}

/** ITU-R 601 luma of an RGB image (or the image itself when grayscale), one plane. */
function grayPlane(img: Image): Float32Array {
  const plane = img.height * img.width;
  if (img.channels !== 3) return img.data.subarray(0, plane);
  const out = new Float32Array(plane);
  for (let i = 0; i < plane; i++)
    out[i] = 0.299 * img.data[i] + 0.587 * img.data[plane + i] + 0.114 * img.data[2 * plane + i];
  return out;
}

function tilePlane(img: Image, plane: Float32Array): Float32Array {
  const out = new Float32Array(img.data.length);
  for (let c = 0; c < img.channels; c++) out.set(plane, c * plane.length);
  return out;
}

function autoContrast(img: Image): Image {
  const plane = img.height * img.width;
  const out = blank(img);
  for (let c = 0; c < img.channels; c++) {
    const ch = img.data.subarray(c * plane, (c + 1) * plane);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of ch) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    const scale = hi > lo ? 1 / (hi - lo) : 0;
    for (let i = 0; i < plane; i++) out.data[c * plane + i] = scale ? (ch[i] - lo) * scale : ch[i];
  }
  return out;
}

/** PIL's ImageOps.equalize per channel on the 8-bit histogram. */
function equalize(img: Image): Image {
  const plane = img.height * img.width;
  const out = blank(img);
  for (let c = 0; c < img.channels; c++) {
    const bytes = new Uint8Array(plane);
    for (let i = 0; i < plane; i++) bytes[i] = Math.round(clamp01(img.data[c * plane + i]) * 255);
    const hist = new Array<number>(256).fill(0);
    for (const b of bytes) hist[b]++;
    let last = 255;
    while (last > 0 && hist[last] === 0) last--;
    const step = Math.floor((plane - hist[last]) / 255);
    if (step === 0) {
      out.data.set(img.data.subarray(c * plane, (c + 1) * plane), c * plane);
      continue;
    }
    const lut = new Float32Array(256);
    let n = Math.floor(step / 2);
    for (let i = 0; i < 256; i++) {
      lut[i] = Math.min(255, Math.floor(n / step)) / 255;
      n += hist[i];
    }
    for (let i = 0; i < plane; i++) out.data[c * plane + i] = lut[bytes[i]];
  }
  return out;
}

/** PIL's SMOOTH filter ([[1,1,1],[1,5,1],[1,1,1]] / 13) on the interior; borders stay as they are. */
function smoothed(img: Image): Float32Array {
  const { width: w, height: h } = img;
  const out = img.data.slice();
  for (let c = 0; c < img.channels; c++) {
    const o = c * h * w;
    for (let y = 1; y < h - 1; y++) {
      for (let x = 1; x < w - 1; x++) {
        let s = 4 * img.data[o + y * w + x];
        for (let dy = -1; dy <= 1; dy++)
          for (let dx = -1; dx <= 1; dx++) s += img.data[o + (y + dy) * w + x + dx];
        out[o + y * w + x] = s / 13;
      }
    }
  }
  return out;
}

export type RandAugmentOp =
  | 'Identity'
  | 'ShearX'
  | 'ShearY'
  | 'TranslateX'
  | 'TranslateY'
  | 'Rotate'
  | 'Brightness'
  | 'Color'
  | 'Contrast'
  | 'Sharpness'
  | 'Posterize'
  | 'Solarize'
  | 'AutoContrast'
  | 'Equalize';

export const RAND_AUGMENT_OPS: readonly RandAugmentOp[] = [
  'Identity',
  'ShearX',
  'ShearY',
  'TranslateX',
  'TranslateY',
  'Rotate',
  'Brightness',
  'Color',
  'Contrast',
  'Sharpness',
  'Posterize',
  'Solarize',
  'AutoContrast',
  'Equalize',
];

/** Ops whose magnitude is applied with a random sign (torchvision's "signed" ops). */
const SIGNED = new Set<RandAugmentOp>([
  'ShearX',
  'ShearY',
  'TranslateX',
  'TranslateY',
  'Rotate',
  'Brightness',
  'Color',
  'Contrast',
  'Sharpness',
]);

/**
 * One RandAugment op at `level` in [0, 1] (magnitude / (bins - 1)) with the given sign, using
 * torchvision's magnitude ranges: shear 0.3, translate 150/331 of the size, rotate 30 degrees,
 * enhance factors 1 +- 0.9, posterize 8..4 bits, solarize threshold 1..0.
 */
export function applyRandAugmentOp(
  img: Image,
  op: RandAugmentOp,
  level: number,
  sign: 1 | -1,
  fill = 0,
): Image {
  switch (op) {
    case 'Identity':
      return img;
    case 'ShearX': {
      // torchvision shears around the image center: x_in = x_out - s * y_out.
      const s = sign * 0.3 * level;
      return warp(img, [1, -s, 0, 0, 1, 0], fill);
    }
    case 'ShearY': {
      const s = sign * 0.3 * level;
      return warp(img, [1, 0, 0, -s, 1, 0], fill);
    }
    case 'TranslateX':
      return warp(img, [1, 0, -sign * Math.round((150 / 331) * img.width * level), 0, 1, 0], fill);
    case 'TranslateY':
      return warp(img, [1, 0, 0, 0, 1, -sign * Math.round((150 / 331) * img.height * level)], fill);
    case 'Rotate': {
      // Counter-clockwise by the angle, as PIL/torchvision rotate; the inverse map turns back.
      const t = (sign * 30 * level * Math.PI) / 180;
      const cos = Math.cos(t);
      const sin = Math.sin(t);
      return warp(img, [cos, -sin, 0, sin, cos, 0], fill);
    }
    case 'Brightness':
      return blend(img, 0, 1 + sign * 0.9 * level);
    case 'Color':
      return img.channels === 3 ? blend(img, tilePlane(img, grayPlane(img)), 1 + sign * 0.9 * level) : img;
    case 'Contrast': {
      const g = grayPlane(img);
      let mean = 0;
      for (const v of g) mean += v;
      return blend(img, mean / g.length, 1 + sign * 0.9 * level);
    }
    case 'Sharpness':
      return blend(img, smoothed(img), 1 + sign * 0.9 * level);
    case 'Posterize': {
      const bits = 8 - Math.round(level * 4);
      const mask = (0xff << (8 - bits)) & 0xff;
      return mapPixels(img, (v) => (Math.round(clamp01(v) * 255) & mask) / 255);
    }
    case 'Solarize': {
      const threshold = 1 - level;
      return mapPixels(img, (v) => (v >= threshold ? 1 - v : v));
    }
    case 'AutoContrast':
      return autoContrast(img);
    case 'Equalize':
      return equalize(img);
  }
}

export interface RandAugmentOptions {
  /** Ops applied per image (torchvision num_ops, default 2). */
  numOps?: number;
  /** Magnitude bin in 0..numMagnitudeBins-1 (default 9). */
  magnitude?: number;
  numMagnitudeBins?: number;
  /** Value for pixels moved in from outside (in the image's [0, 1] range). */
  fill?: number;
  /** Restrict to a subset of ops (e.g. without Color for grayscale). */
  ops?: readonly RandAugmentOp[];
}

/** torchvision's RandAugment: `numOps` ops drawn uniformly with replacement, each at the fixed magnitude. */
export function randAugment(options: RandAugmentOptions = {}): Transform {
  const { numOps = 2, magnitude = 9, numMagnitudeBins = 31, fill = 0, ops = RAND_AUGMENT_OPS } = options;
  if (!(magnitude >= 0 && magnitude < numMagnitudeBins)) {
    throw new Error(`randAugment: magnitude ${magnitude} must be in 0..${numMagnitudeBins - 1}`);
  }
  const level = magnitude / (numMagnitudeBins - 1);
  return (img, rng) => {
    let out = img;
    for (let i = 0; i < numOps; i++) {
      const op = ops[rng.int(0, ops.length)];
      const sign = SIGNED.has(op) && rng.next() < 0.5 ? -1 : 1;
      out = applyRandAugmentOp(out, op, level, sign, fill);
    }
    return out;
  };
}

export interface RandomErasingOptions {
  /** Probability of erasing one box (timm re_prob, default 0.25). */
  p?: number;
  /** Box area as a fraction of the image, [min, max]. */
  scale?: readonly [number, number];
  /** Box aspect ratio range, sampled log-uniformly. */
  ratio?: readonly [number, number];
  /** 'pixel': per-pixel standard normal (timm's default, for normalized images); 'const': `value`. */
  mode?: 'pixel' | 'const';
  value?: number;
}

/** timm's RandomErasing (one box, up to 10 attempts to fit it); apply after normalization. */
export function randomErasing(options: RandomErasingOptions = {}): Transform {
  const { p = 0.25, scale = [0.02, 1 / 3], ratio = [0.3, 3.3], mode = 'pixel', value = 0 } = options;
  const logRatio = [Math.log(ratio[0]), Math.log(ratio[1])];
  return (img, rng) => {
    if (rng.next() >= p) return img;
    const { width: w, height: h } = img;
    const area = w * h;
    for (let attempt = 0; attempt < 10; attempt++) {
      const target = area * (scale[0] + rng.next() * (scale[1] - scale[0]));
      const aspect = Math.exp(logRatio[0] + rng.next() * (logRatio[1] - logRatio[0]));
      const eh = Math.round(Math.sqrt(target * aspect));
      const ew = Math.round(Math.sqrt(target / aspect));
      if (eh >= h || ew >= w || eh === 0 || ew === 0) continue;
      const top = rng.int(0, h - eh + 1);
      const left = rng.int(0, w - ew + 1);
      const out = withData(img, img.data.slice());
      for (let c = 0; c < img.channels; c++) {
        for (let y = top; y < top + eh; y++) {
          for (let x = left; x < left + ew; x++)
            out.data[(c * h + y) * w + x] = mode === 'pixel' ? rng.normal() : value;
        }
      }
      return out;
    }
    return img;
  };
}

// ---- batch-level: Mixup / CutMix with soft targets (timm.data.Mixup, mode 'batch') ----

/** Gamma(shape, 1) by Marsaglia and Tsang; shape < 1 via the boost Gamma(shape + 1) * U^(1/shape). */
function sampleGamma(shape: number, rng: Generator): number {
  if (shape < 1) return sampleGamma(shape + 1, rng) * rng.next() ** (1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = rng.normal();
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rng.next();
    if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

export function sampleBeta(a: number, b: number, rng: Generator): number {
  const x = sampleGamma(a, rng);
  const y = sampleGamma(b, rng);
  return x / (x + y);
}

/** One-hot targets with label smoothing: `1 - smoothing + smoothing/K` on the class, `smoothing/K` elsewhere (B, K). */
export function smoothOneHot(labels: ArrayLike<number>, numClasses: number, smoothing = 0): Float32Array {
  const off = smoothing / numClasses;
  const on = 1 - smoothing + off;
  const out = new Float32Array(labels.length * numClasses).fill(off);
  for (let i = 0; i < labels.length; i++) out[i * numClasses + labels[i]] = on;
  return out;
}

export interface MixupOptions {
  /** Beta(alpha, alpha) for Mixup; 0 disables (timm default 1.0 in its Mixup class, 0.8 in DeiT recipes). */
  mixupAlpha?: number;
  /** Beta(alpha, alpha) for CutMix; 0 disables. */
  cutmixAlpha?: number;
  /** Probability of mixing a batch at all. */
  prob?: number;
  /** When both are on, probability of CutMix instead of Mixup. */
  switchProb?: number;
  labelSmoothing?: number;
  numClasses: number;
}

export interface MixedBatch {
  /** (B, C, H, W) mixed in place. */
  images: Float32Array;
  /** (B, K) soft targets. */
  targets: Float32Array;
  lam: number;
  mode: 'none' | 'mixup' | 'cutmix';
}

/**
 * Mixes a batch with its reverse (sample i with B-1-i), timm's 'batch' mode: Mixup blends whole
 * images, CutMix pastes a box whose area sets lambda; targets mix the smoothed one-hots the same way.
 */
export function mixupBatch(
  images: Float32Array,
  labels: ArrayLike<number>,
  shape: readonly [number, number, number],
  options: MixupOptions,
  rng: Generator,
): MixedBatch {
  const {
    mixupAlpha = 1,
    cutmixAlpha = 0,
    prob = 1,
    switchProb = 0.5,
    labelSmoothing = 0.1,
    numClasses,
  } = options;
  const batch = labels.length;
  const [channels, h, w] = shape;
  const sampleSize = channels * h * w;
  let lam = 1;
  let mode: MixedBatch['mode'] = 'none';
  if ((mixupAlpha > 0 || cutmixAlpha > 0) && rng.next() < prob) {
    const useCutmix = mixupAlpha > 0 && cutmixAlpha > 0 ? rng.next() < switchProb : cutmixAlpha > 0;
    mode = useCutmix ? 'cutmix' : 'mixup';
    lam = sampleBeta(useCutmix ? cutmixAlpha : mixupAlpha, useCutmix ? cutmixAlpha : mixupAlpha, rng);
  }
  const source = mode === 'none' ? images : images.slice();
  if (mode === 'mixup') {
    for (let b = 0; b < batch; b++) {
      const o = b * sampleSize;
      const r = (batch - 1 - b) * sampleSize;
      for (let i = 0; i < sampleSize; i++) images[o + i] = lam * source[o + i] + (1 - lam) * source[r + i];
    }
  } else if (mode === 'cutmix') {
    // timm's rand_bbox: a box of side sqrt(1 - lam) times the image, centered uniformly, clipped.
    const cutRatio = Math.sqrt(1 - lam);
    const ch = Math.trunc(h * cutRatio);
    const cw = Math.trunc(w * cutRatio);
    const cy = rng.int(0, h);
    const cx = rng.int(0, w);
    const y0 = Math.max(0, Math.min(h, cy - Math.trunc(ch / 2)));
    const y1 = Math.max(0, Math.min(h, cy + Math.trunc(ch / 2)));
    const x0 = Math.max(0, Math.min(w, cx - Math.trunc(cw / 2)));
    const x1 = Math.max(0, Math.min(w, cx + Math.trunc(cw / 2)));
    for (let b = 0; b < batch; b++) {
      const r = batch - 1 - b;
      for (let c = 0; c < channels; c++) {
        for (let y = y0; y < y1; y++) {
          for (let x = x0; x < x1; x++) {
            const off = (c * h + y) * w + x;
            images[b * sampleSize + off] = source[r * sampleSize + off];
          }
        }
      }
    }
    lam = 1 - ((y1 - y0) * (x1 - x0)) / (h * w);
  }
  const y1 = smoothOneHot(labels, numClasses, labelSmoothing);
  const targets = new Float32Array(y1.length);
  for (let b = 0; b < batch; b++) {
    const r = batch - 1 - b;
    for (let k = 0; k < numClasses; k++) {
      targets[b * numClasses + k] = lam * y1[b * numClasses + k] + (1 - lam) * y1[r * numClasses + k];
    }
  }
  return { images, targets, lam, mode };
}
