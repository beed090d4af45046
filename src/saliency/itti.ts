/**
 * The saliency model of Itti, Koch & Niebur (PAMI 1998), "A model of saliency-based visual attention
 * for rapid scene analysis", in one page:
 *
 *   image ─► I, R, G, B, Y ─► dyadic Gaussian pyramids (scales 0..8)
 *         ─► center-surround |c ⊖ s|, c ∈ {2,3,4}, s = c + {3,4}
 *              6 intensity maps, 12 color-opponent maps (RG, BY), 24 orientation maps (0/45/90/135°)
 *         ─► N(.) on every map, across-scale addition ⊕ at scale 4 ─► conspicuity Ī, C̄, Ō
 *         ─► S = (N(Ī) + N(C̄) + N(Ō)) / 3
 *
 * N(.) is the 1998 operator (scale to [0, 1], multiply by (1 - m̄)² with m̄ the mean of the other local
 * maxima) or the iterative difference-of-Gaussians competition of Itti & Koch (2001). Top-down gains
 * (the "task" of a search) multiply channels, sub-channels and the polarity of the opponent maps.
 * With `range: 'map'` and `polarity: 'absolute'` this is the paper's letter; the defaults depart from
 * it in those two places (see IttiOptions), which is what makes color and orientation singletons of
 * clean search arrays pop out as the paper reports (docs/saliency/README.md has the numbers). The
 * winner-take-all scanpath is in scanpath.ts.
 *
 * Maps are plain Float32Array planes: the whole model is a few separable filters, resamplers and
 * point-wise loops, and a 512x512 image runs end to end in tens of milliseconds. Pixel j of pyramid
 * level k sits on input pixel j·2^k (decimation keeps the even samples), which every resampler here
 * and the scanpath's coordinates follow.
 */
import { fmt } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';

/** A single-channel image: row-major (h, w). */
export interface Plane {
  data: Float32Array;
  h: number;
  w: number;
}

/** The 1998 model's scales: centers c, surround offsets d (s = c + d), conspicuity at MAP_LEVEL. */
const CENTERS = [2, 3, 4] as const;
const DELTAS = [3, 4] as const;
export const MAP_LEVEL = 4;
export const ORIENTATIONS = [0, 45, 90, 135] as const;

/** Every gain a top-down bias can set; 1 everywhere is the bottom-up model. */
export const BIAS_KEYS = [
  'intensity',
  'intensity.on',
  'intensity.off',
  'color',
  'color.RG',
  'color.BY',
  'color.red',
  'color.green',
  'color.blue',
  'color.yellow',
  'orientation',
  'orientation.0',
  'orientation.45',
  'orientation.90',
  'orientation.135',
] as const;
export type BiasKey = (typeof BIAS_KEYS)[number];
/**
 * Top-down gains. `intensity` / `color` / `orientation` weigh the conspicuity maps in S;
 * `color.RG`, `color.BY`, `orientation.<deg>` weigh the sub-channels inside a conspicuity map;
 * `intensity.on|off`, `color.red|green|blue|yellow` weigh the two signs of the center-surround
 * difference (bright-on-dark vs dark-on-bright, red-center vs green-center, ...), which is what makes
 * "red things" differ from "green things": after N(.) of each sign with polarity 'separate', before
 * N(.) of the weighted |center - surround| with polarity 'absolute'.
 */
export type Bias = Partial<Record<BiasKey, number>>;

export type Normalization = 'maxnorm' | 'iterative';

export interface IttiOptions {
  /** N(.): 'maxnorm' (PAMI 1998, default) or 'iterative' (DoG competition, Itti & Koch 2001). */
  normalization?: Normalization;
  /**
   * The range N(.) scales a feature map to: 'channel' (default) shares one range among the feature
   * maps of a channel (intensity, color, orientation), 'map' gives each map its own (the paper's
   * letter). Conspicuity maps always get their own range, which is what equalizes the modalities.
   */
  range?: 'channel' | 'map';
  /**
   * The two signs of an intensity or color-opponent difference (bright vs dark center, red vs green
   * center, blue vs yellow center): 'separate' (default) normalizes them as two maps, the ON and
   * OFF cell populations, and adds the results; 'absolute' normalizes |center - surround| (the
   * paper's letter), under which a red item among green ones differs from its neighbours only
   * through its surround. Orientation contrast is |center - surround| either way.
   */
  polarity?: 'separate' | 'absolute';
  /** Iterations of the DoG competition for normalization 'iterative' (default 3). */
  iterations?: number;
  /** Top-down gains, as an object or as 'color=2,orientation.90=3'. */
  bias?: Bias | string;
}

export type Channel = 'intensity' | 'color' | 'orientation';

export interface IttiResult {
  /** (h, w) saliency map at scale 4: the mean of the three conspicuity maps. */
  saliency: Tensor;
  /** (h, w) each channel's contribution to S: gain · N(conspicuity). */
  conspicuity: Record<Channel, Tensor>;
  /**
   * (h, w) the sub-channel maps summed into each conspicuity map, gains applied: 'intensity' (Ī),
   * 'color.RG', 'color.BY' (C̄ = RG + BY), 'orientation.0' ... 'orientation.135' (Ō = Σ).
   */
  features: Record<string, Tensor>;
  /** Input pixels per saliency pixel (16); saliency pixel (i, j) sits on input pixel (16i, 16j). */
  scale: number;
  /** Input image size. */
  width: number;
  height: number;
  normalization: Normalization;
  range: 'channel' | 'map';
  polarity: 'separate' | 'absolute';
  /** The gains in effect, every key present. */
  bias: Record<BiasKey, number>;
}

// ---------------------------------------------------------------------------------------------
// Input

/** Float planes r, g, b from (H, W), (C, H, W) with C in {1, 3, 4} (alpha dropped) or (1, C, H, W). */
function rgbPlanes(image: Tensor): {
  r: Float32Array;
  g: Float32Array;
  b: Float32Array;
  h: number;
  w: number;
} {
  let shape = image.shape;
  if (shape.length === 4 && shape[0] === 1) shape = shape.slice(1);
  if (shape.length === 2) shape = [1, ...shape];
  if (shape.length !== 3 || ![1, 3, 4].includes(shape[0]) || shape[1] < 1 || shape[2] < 1) {
    throw new Error(
      `ittiSaliency: expected an image tensor (3, H, W), (1, H, W), (4, H, W) or (H, W), got ${fmt(image.shape)}; use readImage(path)`,
    );
  }
  const [c, h, w] = shape;
  const n = h * w;
  const plane = (k: number): Float32Array => {
    const src = image.data;
    const off = (c === 1 ? 0 : k) * n;
    if (src instanceof Float32Array) return src.subarray(off, off + n);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = Number(src[off + i]);
    return out;
  };
  const r = plane(0);
  return c === 1 ? { r, g: r, b: r, h, w } : { r, g: plane(1), b: plane(2), h, w };
}

// ---------------------------------------------------------------------------------------------
// Filters and resamplers

/** One pyramid step: 5-tap binomial [1 4 6 4 1]/16 (edges replicated), keep the even samples. */
export function reduce(src: Plane): Plane {
  const { data, h, w } = src;
  const w2 = (w + 1) >> 1;
  const h2 = (h + 1) >> 1;
  const lastX = w - 1;
  const tmp = new Float32Array(h * w2); // (h, w2)
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let j = 0; j < w2; j++) {
      const x = 2 * j;
      const i = row + x;
      if (x >= 2 && x + 2 <= lastX) {
        tmp[y * w2 + j] = (data[i - 2] + data[i + 2] + 4 * (data[i - 1] + data[i + 1]) + 6 * data[i]) / 16;
        continue;
      }
      const xm2 = x < 2 ? 0 : x - 2;
      const xm1 = x < 1 ? 0 : x - 1;
      const xp1 = Math.min(x + 1, lastX);
      const xp2 = Math.min(x + 2, lastX);
      tmp[y * w2 + j] =
        (data[row + xm2] + data[row + xp2] + 4 * (data[row + xm1] + data[row + xp1]) + 6 * data[i]) / 16;
    }
  }
  const lastY = h - 1;
  const out = new Float32Array(h2 * w2); // (h2, w2)
  for (let i = 0; i < h2; i++) {
    const y = 2 * i;
    const r0 = (y < 2 ? 0 : y - 2) * w2;
    const r1 = (y < 1 ? 0 : y - 1) * w2;
    const r2 = y * w2;
    const r3 = Math.min(y + 1, lastY) * w2;
    const r4 = Math.min(y + 2, lastY) * w2;
    const o = i * w2;
    for (let j = 0; j < w2; j++) {
      out[o + j] = (tmp[r0 + j] + tmp[r4 + j] + 4 * (tmp[r1 + j] + tmp[r3 + j]) + 6 * tmp[r2 + j]) / 16;
    }
  }
  return { data: out, h: h2, w: w2 };
}

/** Levels 0..top of the dyadic Gaussian pyramid (level 0 is the plane itself). */
export function gaussianPyramid(base: Plane, top: number): Plane[] {
  const levels = [base];
  for (let k = 1; k <= top; k++) levels.push(reduce(levels[k - 1]));
  return levels;
}

/**
 * Bilinear resampling onto an (h, w) grid whose pixel (i, j) lies at (i·step, j·step) in `src`
 * (edges clamped): step 2^-d interpolates pyramid level c + d to level c.
 */
export function sampleBilinear(src: Plane, h: number, w: number, step: number): Plane {
  const out = new Float32Array(h * w);
  const x0 = new Int32Array(w);
  const x1 = new Int32Array(w);
  const fx = new Float32Array(w);
  for (let j = 0; j < w; j++) {
    const x = Math.min(j * step, src.w - 1);
    x0[j] = Math.floor(x);
    x1[j] = Math.min(x0[j] + 1, src.w - 1);
    fx[j] = x - x0[j];
  }
  const d = src.data;
  for (let i = 0; i < h; i++) {
    const y = Math.min(i * step, src.h - 1);
    const y0 = Math.floor(y);
    const fy = y - y0;
    const ra = y0 * src.w;
    const rb = Math.min(y0 + 1, src.h - 1) * src.w;
    const o = i * w;
    for (let j = 0; j < w; j++) {
      const top = d[ra + x0[j]] + fx[j] * (d[ra + x1[j]] - d[ra + x0[j]]);
      const bottom = d[rb + x0[j]] + fx[j] * (d[rb + x1[j]] - d[rb + x0[j]]);
      out[o + j] = top + fy * (bottom - top);
    }
  }
  return { data: out, h, w };
}

/**
 * Separable convolution with a symmetric odd-length kernel. 'zero': outside is zero; 'renormalize':
 * the taps that fall inside are rescaled to the kernel's full sum (no darkening at the borders).
 */
export function convolveSeparable(src: Plane, taps: Float32Array, border: 'zero' | 'renormalize'): Plane {
  const { data, h, w } = src;
  const r = (taps.length - 1) >> 1;
  let total = 0;
  for (const t of taps) total += t;
  const tmp = new Float32Array(h * w);
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      let acc = 0;
      if (x >= r && x + r < w) {
        const start = row + x - r;
        for (let k = 0; k < taps.length; k++) acc += taps[k] * data[start + k];
        tmp[row + x] = acc;
        continue;
      }
      const lo = Math.max(0, x - r);
      const hi = Math.min(w - 1, x + r);
      let weight = 0;
      for (let xx = lo; xx <= hi; xx++) {
        const t = taps[xx - x + r];
        acc += t * data[row + xx];
        weight += t;
      }
      tmp[row + x] = border === 'zero' || weight === 0 ? acc : (acc * total) / weight;
    }
  }
  const out = new Float32Array(h * w);
  const acc = new Float64Array(w);
  for (let y = 0; y < h; y++) {
    const lo = Math.max(0, y - r);
    const hi = Math.min(h - 1, y + r);
    acc.fill(0);
    let weight = 0;
    for (let yy = lo; yy <= hi; yy++) {
      const t = taps[yy - y + r];
      const row = yy * w;
      for (let x = 0; x < w; x++) acc[x] += t * tmp[row + x];
      weight += t;
    }
    const scale = border === 'zero' || weight === 0 ? 1 : total / weight;
    const row = y * w;
    for (let x = 0; x < w; x++) out[row + x] = acc[x] * scale;
  }
  return { data: out, h, w };
}

/** A sampled Gaussian of standard deviation sigma, unit sum, radius ceil(3 sigma) capped at maxRadius. */
export function gaussianTaps(sigma: number, maxRadius: number): Float32Array {
  const r = Math.max(0, Math.min(Math.ceil(3 * sigma), maxRadius));
  const taps = new Float32Array(2 * r + 1);
  let sum = 0;
  for (let k = -r; k <= r; k++) sum += taps[k + r] = Math.exp(-(k * k) / (2 * sigma * sigma));
  for (let k = 0; k < taps.length; k++) taps[k] /= sum;
  return taps;
}

/** Box sums of radius r along rows (zero outside), each window divided by its width. */
function boxRows(src: Float32Array, h: number, w: number, r: number): Float32Array {
  const out = new Float32Array(h * w);
  const width = 2 * r + 1;
  for (let y = 0; y < h; y++) {
    const row = y * w;
    let acc = 0;
    for (let x = 0; x < Math.min(r, w); x++) acc += src[row + x];
    for (let x = 0; x < w; x++) {
      if (x + r < w) acc += src[row + x + r];
      if (x - r - 1 >= 0) acc -= src[row + x - r - 1];
      out[row + x] = acc / width;
    }
  }
  return out;
}

/** The same along columns. */
function boxColumns(src: Float32Array, h: number, w: number, r: number): Float32Array {
  const out = new Float32Array(h * w);
  const width = 2 * r + 1;
  const acc = new Float64Array(w);
  for (let y = 0; y < Math.min(r, h); y++) for (let x = 0; x < w; x++) acc[x] += src[y * w + x];
  for (let y = 0; y < h; y++) {
    if (y + r < h) for (let x = 0; x < w; x++) acc[x] += src[(y + r) * w + x];
    if (y - r - 1 >= 0) for (let x = 0; x < w; x++) acc[x] -= src[(y - r - 1) * w + x];
    for (let x = 0; x < w; x++) out[y * w + x] = acc[x] / width;
  }
  return out;
}

/**
 * Gaussian blur whose border outputs are the weighted mean of the pixels inside (normalized
 * convolution). Wide kernels are three box filters (Wells 1986), whose cost does not grow with sigma.
 */
export function blurNormalized(src: Plane, sigma: number): Plane {
  if (sigma < 4)
    return convolveSeparable(src, gaussianTaps(sigma, Math.max(src.h, src.w) - 1), 'renormalize');
  const { h, w } = src;
  const radii = boxRadii(sigma);
  let num: Float32Array = src.data;
  for (const r of radii) num = boxColumns(boxRows(num, h, w, r), h, w, r);
  const den = boxWeights(h, w, radii);
  const out = new Float32Array(h * w);
  for (let i = 0; i < out.length; i++) out[i] = num[i] / den[i];
  return { data: out, h, w };
}

/** Radii of three boxes of odd widths wl or wl + 2 whose variances add up to sigma² (Kovesi 2010). */
function boxRadii(sigma: number): number[] {
  const ideal = Math.floor(Math.sqrt(4 * sigma * sigma + 1));
  const wl = ideal % 2 === 0 ? ideal - 1 : ideal;
  const m = Math.round((12 * sigma * sigma - 3 * wl * wl - 12 * wl - 9) / (-4 * wl - 4));
  return [0, 1, 2].map((k) => ((k < m ? wl : wl + 2) - 1) / 2);
}

// The box cascade applied to ones: the in-bounds weight per pixel. The same few map sizes recur.
const weightCache = new Map<string, Float32Array>();
function boxWeights(h: number, w: number, radii: number[]): Float32Array {
  const key = `${h}x${w}:${radii.join(',')}`;
  let weights = weightCache.get(key);
  if (!weights) {
    weights = new Float32Array(h * w).fill(1);
    for (const r of radii) weights = boxColumns(boxRows(weights, h, w, r), h, w, r);
    if (weightCache.size >= 64) weightCache.clear();
    weightCache.set(key, weights);
  }
  return weights;
}

/** Level k of the Laplacian pyramid: Gaussian level k minus level k + 1 interpolated back to it. */
export function laplacianLevel(pyramid: Plane[], k: number): Plane {
  const fine = pyramid[k];
  const out = sampleBilinear(pyramid[k + 1], fine.h, fine.w, 0.5);
  for (let i = 0; i < out.data.length; i++) out.data[i] = fine.data[i] - out.data[i];
  return out;
}

// The Gabor envelope: 9-tap binomial (sigma = sqrt 2 pixels), the low-pass of Greenspan et al. (1994).
const BINOMIAL9 = new Float32Array([1, 8, 28, 56, 70, 56, 28, 8, 1].map((v) => v / 256));
// Gabor carrier: a period of 4 pixels, the peak of each Laplacian band.
const GABOR_K = Math.PI / 2;

/**
 * The 9-tap binomial low-pass with zero padding: convolveSeparable(BINOMIAL9, 'zero') with its
 * symmetric taps folded (5 multiplies a tap pass) and no bounds checks away from the borders.
 */
export function binomial9(src: Float32Array, h: number, w: number): Float32Array {
  if (w < 9 || h < 9) return convolveSeparable({ data: src, h, w }, BINOMIAL9, 'zero').data;
  const tmp = new Float32Array(h * w);
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      const i = row + x;
      if (x >= 4 && x < w - 4) {
        tmp[i] =
          (src[i - 4] +
            src[i + 4] +
            8 * (src[i - 3] + src[i + 3]) +
            28 * (src[i - 2] + src[i + 2]) +
            56 * (src[i - 1] + src[i + 1]) +
            70 * src[i]) /
          256;
      } else {
        let acc = 0;
        for (let k = Math.max(0, x - 4); k <= Math.min(w - 1, x + 4); k++)
          acc += BINOMIAL9[k - x + 4] * src[row + k];
        tmp[i] = acc;
      }
    }
  }
  const out = new Float32Array(h * w);
  for (let y = 0; y < h; y++) {
    const row = y * w;
    if (y >= 4 && y < h - 4) {
      for (let x = 0; x < w; x++) {
        const i = row + x;
        out[i] =
          (tmp[i - 4 * w] +
            tmp[i + 4 * w] +
            8 * (tmp[i - 3 * w] + tmp[i + 3 * w]) +
            28 * (tmp[i - 2 * w] + tmp[i + 2 * w]) +
            56 * (tmp[i - w] + tmp[i + w]) +
            70 * tmp[i]) /
          256;
      }
    } else {
      for (let k = Math.max(0, y - 4); k <= Math.min(h - 1, y + 4); k++) {
        const t = BINOMIAL9[k - y + 4];
        for (let x = 0; x < w; x++) out[row + x] += t * tmp[k * w + x];
      }
    }
  }
  return out;
}

/**
 * Gabor energy at orientation theta (degrees, counterclockwise from horizontal on screen; 0 prefers
 * horizontal bars, 90 vertical). Demodulating the band-pass level by the carrier and low-passing it
 * is the complex Gabor filter (Greenspan et al. 1994, used by the paper): |G * (L e^{-ik·x})|.
 */
export function gaborEnergy(lap: Plane, theta: number): Plane {
  const { data, h, w } = lap;
  const rad = (theta * Math.PI) / 180;
  // The carrier varies across the bar: wave vector perpendicular to the bar direction (cos, -sin).
  const kx = GABOR_K * Math.sin(rad);
  const ky = GABOR_K * Math.cos(rad);
  const cx = new Float32Array(w);
  const sx = new Float32Array(w);
  for (let x = 0; x < w; x++) {
    cx[x] = Math.cos(kx * x);
    sx[x] = Math.sin(kx * x);
  }
  const re = new Float32Array(h * w);
  const im = new Float32Array(h * w);
  for (let y = 0; y < h; y++) {
    const cy = Math.cos(ky * y);
    const sy = Math.sin(ky * y);
    const row = y * w;
    for (let x = 0; x < w; x++) {
      const v = data[row + x];
      re[row + x] = v * (cx[x] * cy - sx[x] * sy);
      im[row + x] = v * (sx[x] * cy + cx[x] * sy);
    }
  }
  // The Laplacian is zero-mean, so zero padding is its natural continuation.
  const a = binomial9(re, h, w);
  const b = binomial9(im, h, w);
  const out = new Float32Array(h * w);
  for (let i = 0; i < out.length; i++) out[i] = Math.sqrt(a[i] * a[i] + b[i] * b[i]);
  return { data: out, h, w };
}

// ---------------------------------------------------------------------------------------------
// Feature extraction

/** I = (r + g + b) / 3 and the broadly tuned R, G, B, Y, hue decoupled from intensity. */
function colorChannels(r: Float32Array, g: Float32Array, b: Float32Array) {
  const n = r.length;
  const intensity = new Float32Array(n);
  let maxI = 0;
  for (let i = 0; i < n; i++) {
    const v = (r[i] + g[i] + b[i]) / 3;
    intensity[i] = v;
    if (v > maxI) maxI = v;
  }
  // Only the two opponent differences are ever used, and pyramids are linear, so build R - G and
  // B - Y directly. Below a tenth of the maximum intensity hue is not perceivable: zero there.
  const rg = new Float32Array(n);
  const by = new Float32Array(n);
  const floor = maxI / 10;
  for (let i = 0; i < n; i++) {
    const I = intensity[i];
    if (!(I > floor)) continue;
    const inv = 1 / I;
    const rn = r[i] * inv;
    const gn = g[i] * inv;
    const bn = b[i] * inv;
    const R = Math.max(0, rn - (gn + bn) / 2);
    const G = Math.max(0, gn - (rn + bn) / 2);
    const B = Math.max(0, bn - (rn + gn) / 2);
    const Y = Math.max(0, (rn + gn) / 2 - Math.abs(rn - gn) / 2 - bn);
    rg[i] = R - G;
    by[i] = B - Y;
  }
  return { intensity, rg, by };
}

/** One center-surround feature map, at its center's scale. */
interface FeatureMap {
  center: number;
  map: Plane;
}

/**
 * Center-surround maps: the surround level interpolated to the center level, point-wise signed
 * difference center - surround. For the color pyramids (R - G, B - Y) this is the double-opponent
 * cell, center R+G- against surround G+R-: the paper's |(R(c) - G(c)) ⊖ (G(s) - R(s))| read as that
 * cell's response (a literal difference of the two opponent signals would cancel the opponency).
 */
function centerSurround(pyramid: Plane[]): FeatureMap[] {
  const maps: FeatureMap[] = [];
  for (const c of CENTERS) {
    for (const d of DELTAS) {
      const center = pyramid[c];
      const diff = sampleBilinear(pyramid[c + d], center.h, center.w, 2 ** -d);
      const out = diff.data; // the surround, overwritten point-wise by the difference
      for (let i = 0; i < out.length; i++) out[i] = center.data[i] - out[i];
      maps.push({ center: c, map: diff });
    }
  }
  return maps;
}

/** posGain·max(x, 0) + negGain·max(-x, 0): |x| with unit gains, one sign with the other at 0. */
function rectified(map: Plane, posGain: number, negGain: number): Plane {
  const out = new Float32Array(map.data.length);
  for (let i = 0; i < out.length; i++) {
    const x = map.data[i];
    out[i] = x >= 0 ? posGain * x : -negGain * x;
  }
  return { data: out, h: map.h, w: map.w };
}

// ---------------------------------------------------------------------------------------------
// N(.)

/** The values N(.) maps onto [0, M = 1]: one map's own range, or the range of a group of maps. */
export interface Range {
  lo: number;
  hi: number;
}

export function rangeOf(maps: Plane[]): Range {
  let lo = Infinity;
  let hi = -Infinity;
  for (const { data } of maps) {
    for (let i = 0; i < data.length; i++) {
      if (data[i] < lo) lo = data[i];
      if (data[i] > hi) hi = data[i];
    }
  }
  return { lo, hi };
}

/** (map - lo) / (hi - lo), rectified; all zeros when the range is empty. */
function toUnitRange(map: Plane, { lo, hi }: Range): Plane {
  const out = new Float32Array(map.data.length);
  const span = hi - lo;
  if (span > 1e-12 * Math.max(1, Math.abs(hi))) {
    for (let i = 0; i < out.length; i++) out[i] = Math.max(0, (map.data[i] - lo) / span);
  }
  return { data: out, h: map.h, w: map.w };
}

/**
 * PAMI 1998: scale to [0, M = 1], find the mean m̄ of the other local maxima, multiply by (M - m̄)².
 * A map with one strong peak keeps it; a map with many comparable peaks is suppressed. Local maxima
 * are pixels >= their 8 neighbours and above a tenth of the map's peak, so that flat noise does not
 * count; m̄ is taken relative to the map's own peak, so the factor judges the shape of the map only.
 */
export function maxNormalize(map: Plane, range: Range): Plane {
  const out = toUnitRange(map, range);
  const { data: d, h, w } = out;
  let peak = 0;
  for (let i = 0; i < d.length; i++) if (d[i] > peak) peak = d[i];
  if (peak === 0) return out;
  let sum = 0;
  let count = 0;
  const threshold = 0.1 * peak;
  for (let y = 0; y < h; y++) {
    const interiorRow = y > 0 && y < h - 1;
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const v = d[i];
      if (v < threshold) continue;
      let isMax = true;
      if (interiorRow && x > 0 && x < w - 1) {
        isMax =
          d[i - w - 1] <= v &&
          d[i - w] <= v &&
          d[i - w + 1] <= v &&
          d[i - 1] <= v &&
          d[i + 1] <= v &&
          d[i + w - 1] <= v &&
          d[i + w] <= v &&
          d[i + w + 1] <= v;
      } else {
        for (let yy = Math.max(0, y - 1); yy <= Math.min(h - 1, y + 1) && isMax; yy++) {
          for (let xx = Math.max(0, x - 1); xx <= Math.min(w - 1, x + 1); xx++) {
            if (d[yy * w + xx] > v) {
              isMax = false;
              break;
            }
          }
        }
      }
      if (isMax) {
        sum += v;
        count++;
      }
    }
  }
  // m̄ is the mean of the *other* maxima: leave the global one out.
  const others = count - 1;
  const meanOthers = others > 0 ? (sum - peak) / others / peak : 0;
  const factor = (1 - meanOthers) ** 2;
  for (let i = 0; i < d.length; i++) d[i] *= factor;
  return out;
}

// Itti & Koch (2001): DoG with sigma_ex = 2% and sigma_inh = 25% of the map width, c_ex = 0.5,
// c_inh = 1.5, and a constant global inhibition C_inh = 0.02 of the fixed range per iteration.
const DOG = { sigmaEx: 0.02, sigmaInh: 0.25, cEx: 0.5, cInh: 1.5, globalInhibition: 0.02 };

/**
 * JEI 2001: M ← |M + M * DoG - C_inh|≥0, iterated. Short-range excitation and long-range inhibition
 * let a lone peak grow while a field of similar peaks inhibits itself away.
 */
export function iterativeNormalize(map: Plane, range: Range, iterations: number): Plane {
  const out = toUnitRange(map, range);
  const size = Math.max(map.h, map.w);
  const d = out.data;
  for (let it = 0; it < iterations; it++) {
    const ex = blurNormalized(out, Math.max(DOG.sigmaEx * size, 1e-3)).data;
    const inh = blurNormalized(out, DOG.sigmaInh * size).data;
    for (let i = 0; i < d.length; i++) {
      const v = d[i] + DOG.cEx ** 2 * ex[i] - DOG.cInh ** 2 * inh[i] - DOG.globalInhibition;
      d[i] = Math.max(v, 0);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Combination

/**
 * Across-scale addition: reduce each map to the conspicuity scale and add point-wise. reduce is
 * linear, so maps of one scale are added first and each sum is reduced once per level.
 */
function acrossScaleSum(maps: FeatureMap[]): Plane {
  let sum: Plane | null = null;
  for (let level = Math.min(...maps.map((m) => m.center)); level <= MAP_LEVEL; level++) {
    const parts = maps.filter((m) => m.center === level).map((m) => m.map);
    if (sum) parts.push(reduce(sum));
    sum = added(...parts);
  }
  return sum!;
}

function scaled(map: Plane, gain: number): Plane {
  const out = new Float32Array(map.data.length);
  for (let i = 0; i < out.length; i++) out[i] = map.data[i] * gain;
  return { data: out, h: map.h, w: map.w };
}

function added(...maps: Plane[]): Plane {
  const out = new Float32Array(maps[0].data.length);
  for (const m of maps) for (let i = 0; i < out.length; i++) out[i] += m.data[i];
  return { data: out, h: maps[0].h, w: maps[0].w };
}

/** Parses 'color=2,orientation.90=3' into a Bias (resolveBias checks keys and values). */
export function parseBias(text: string): Bias {
  const bias: Bias = {};
  for (const part of text.split(',')) {
    if (part.trim() === '') continue;
    const [key, value, ...rest] = part.split('=').map((s) => s.trim());
    if (value === undefined || rest.length > 0) {
      throw new Error(`bias: '${part}' is not KEY=GAIN; write e.g. color=2,orientation.90=3`);
    }
    bias[key as BiasKey] = Number(value);
  }
  return bias;
}

/** Every gain, defaults 1, validated. */
export function resolveBias(bias: Bias | string | undefined): Record<BiasKey, number> {
  const given = typeof bias === 'string' ? parseBias(bias) : (bias ?? {});
  const gains = Object.fromEntries(BIAS_KEYS.map((k) => [k, 1])) as Record<BiasKey, number>;
  for (const [key, value] of Object.entries(given)) {
    if (!(BIAS_KEYS as readonly string[]).includes(key)) {
      throw new Error(`bias: unknown key '${key}'; use one of ${BIAS_KEYS.join(', ')}`);
    }
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new Error(`bias: gain for '${key}' must be a finite number >= 0, got ${String(value)}`);
    }
    gains[key as BiasKey] = value;
  }
  return gains;
}

const toTensor = (p: Plane): Tensor => new Tensor(p.data, [p.h, p.w]);

/**
 * The Itti-Koch-Niebur saliency map of an image tensor (3, H, W) in [0, 1] (also (1, H, W), (4, H, W)
 * with alpha ignored, or (H, W)). Any size works; below 16 pixels the maps shrink to single pixels.
 */
export function ittiSaliency(image: Tensor, opts: IttiOptions = {}): IttiResult {
  const normalization = opts.normalization ?? 'maxnorm';
  if (normalization !== 'maxnorm' && normalization !== 'iterative') {
    throw new Error(`ittiSaliency: normalization must be 'maxnorm' or 'iterative', got '${normalization}'`);
  }
  const iterations = opts.iterations ?? 3;
  if (!Number.isInteger(iterations) || iterations < 1) {
    throw new Error(`ittiSaliency: iterations must be a positive integer, got ${iterations}`);
  }
  const rangeScope = opts.range ?? 'channel';
  if (rangeScope !== 'channel' && rangeScope !== 'map') {
    throw new Error(`ittiSaliency: range must be 'channel' or 'map', got '${rangeScope}'`);
  }
  const polarity = opts.polarity ?? 'separate';
  if (polarity !== 'separate' && polarity !== 'absolute') {
    throw new Error(`ittiSaliency: polarity must be 'separate' or 'absolute', got '${polarity}'`);
  }
  const gain = resolveBias(opts.bias);
  const normalizeWith = (map: Plane, range: Range): Plane =>
    normalization === 'maxnorm' ? maxNormalize(map, range) : iterativeNormalize(map, range, iterations);
  /** N(.) of one map on its own range. */
  const N = (map: Plane): Plane => normalizeWith(map, rangeOf([map]));
  /** N(.) of a channel's maps, on the channel's common range unless range is 'map'. */
  const normalizeChannel = (maps: Plane[]): Plane[] => {
    const shared = rangeOf(maps);
    return maps.map((m) => normalizeWith(m, rangeScope === 'channel' ? shared : rangeOf([m])));
  };
  const normalizeFeatureMaps = (groups: FeatureMap[][]): FeatureMap[][] => {
    const normalized = normalizeChannel(groups.flat().map((f) => f.map));
    let k = 0;
    return groups.map((g) => g.map((f) => ({ ...f, map: normalized[k++] })));
  };
  /** N(.) of signed center-surround maps, each group with its [positive, negative] gains. */
  const normalizeSigned = (groups: FeatureMap[][], gains: [number, number][]): FeatureMap[][] => {
    const withSign = (sign: 0 | 1) =>
      groups.map((g) => g.map((f) => ({ ...f, map: rectified(f.map, 1 - sign, sign) })));
    if (polarity === 'absolute') {
      return normalizeFeatureMaps(
        groups.map((g, k) => g.map((f) => ({ ...f, map: rectified(f.map, gains[k][0], gains[k][1]) }))),
      );
    }
    const both = normalizeFeatureMaps([...withSign(0), ...withSign(1)]);
    return groups.map((g, k) =>
      g.map((f, i) => ({
        ...f,
        map: added(scaled(both[k][i].map, gains[k][0]), scaled(both[groups.length + k][i].map, gains[k][1])),
      })),
    );
  };

  const { r, g, b, h, w } = rgbPlanes(image);
  const { intensity, rg, by } = colorChannels(r, g, b);

  // Pyramids, scales 0..8; intensity one more level for the Laplacian at scale 8.
  const top = Math.max(...CENTERS) + Math.max(...DELTAS);
  const iPyr = gaussianPyramid({ data: intensity, h, w }, top + 1); // (h/2^k, w/2^k)
  const rgPyr = gaussianPyramid({ data: rg, h, w }, top);
  const byPyr = gaussianPyramid({ data: by, h, w }, top);

  // Intensity: 6 maps.
  const [intensityMaps] = normalizeSigned(
    [centerSurround(iPyr)],
    [[gain['intensity.on'], gain['intensity.off']]],
  );
  const intensityBar = acrossScaleSum(intensityMaps);

  // Color: 6 RG + 6 BY maps; C̄ = ⊕ [N(RG(c,s)) + N(BY(c,s))].
  const [rgMaps, byMaps] = normalizeSigned(
    [centerSurround(rgPyr), centerSurround(byPyr)],
    [
      [gain['color.red'], gain['color.green']],
      [gain['color.blue'], gain['color.yellow']],
    ],
  );
  const rgBar = scaled(acrossScaleSum(rgMaps), gain['color.RG']);
  const byBar = scaled(acrossScaleSum(byMaps), gain['color.BY']);
  const colorBar = added(rgBar, byBar);

  // Orientation: Gabor energy of the Laplacian levels 2..8, 4 × 6 maps; Ō = Σ_θ N(⊕ N(O(c,s,θ))).
  const laplacian: Plane[] = [];
  for (let k = Math.min(...CENTERS); k <= top; k++) laplacian[k] = laplacianLevel(iPyr, k);
  const orientationMaps = normalizeFeatureMaps(
    ORIENTATIONS.map((theta) => {
      const gaborPyr: Plane[] = [];
      for (let k = Math.min(...CENTERS); k <= top; k++) gaborPyr[k] = gaborEnergy(laplacian[k], theta);
      return centerSurround(gaborPyr).map((f) => ({ ...f, map: rectified(f.map, 1, 1) }));
    }),
  );
  const orientationBars = normalizeChannel(orientationMaps.map((maps) => acrossScaleSum(maps))).map(
    (map, k) => scaled(map, gain[`orientation.${ORIENTATIONS[k]}` as BiasKey]),
  );
  const orientationBar = added(...orientationBars);

  const conspicuity = {
    intensity: scaled(N(intensityBar), gain.intensity),
    color: scaled(N(colorBar), gain.color),
    orientation: scaled(N(orientationBar), gain.orientation),
  };
  const saliency = scaled(added(conspicuity.intensity, conspicuity.color, conspicuity.orientation), 1 / 3);

  const features: Record<string, Tensor> = {
    intensity: toTensor(intensityBar),
    'color.RG': toTensor(rgBar),
    'color.BY': toTensor(byBar),
  };
  ORIENTATIONS.forEach((theta, k) => {
    features[`orientation.${theta}`] = toTensor(orientationBars[k]);
  });
  return {
    saliency: toTensor(saliency),
    conspicuity: {
      intensity: toTensor(conspicuity.intensity),
      color: toTensor(conspicuity.color),
      orientation: toTensor(conspicuity.orientation),
    },
    features,
    scale: 2 ** MAP_LEVEL,
    width: w,
    height: h,
    normalization,
    range: rangeScope,
    polarity,
    bias: gain,
  };
}
