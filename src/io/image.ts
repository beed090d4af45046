/**
 * Images in and out through sharp: decode to (3, H, W) float tensors in [0, 1], encode tensors and
 * heatmaps to PNG, colormaps and overlays for the pictures people look at.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import sharp from 'sharp';
import { fmt } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { writeFileAtomic } from './safetensors.js';

export interface RgbImage {
  /** (3, H, W) float32 in [0, 1] */
  tensor: Tensor;
  width: number;
  height: number;
}

async function decode(
  input: string | Uint8Array,
  what: string,
): Promise<{ data: Uint8Array; width: number; height: number }> {
  try {
    const { data, info } = await sharp(input)
      .rotate()
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    return {
      data: new Uint8Array(data.buffer, data.byteOffset, data.length),
      width: info.width,
      height: info.height,
    };
  } catch (e) {
    throw new Error(
      `${what} is not a readable image (${(e as Error).message}); use a JPEG, PNG or WebP file`,
    );
  }
}

/** Reads a JPEG/PNG/WebP/... file (or bytes) to a (3, H, W) float tensor in [0, 1]. */
export async function readImage(input: string | Uint8Array): Promise<Tensor> {
  const what = typeof input === 'string' ? input : 'image data';
  const { data, width, height } = await decode(input, what);
  const channels = data.length / (width * height);
  const out = new Float32Array(3 * width * height);
  const plane = width * height;
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) out[c * plane + i] = data[i * channels + (channels >= 3 ? c : 0)] / 255;
  }
  return new Tensor(out, [3, height, width]);
}

/** Interleaved 8-bit RGB from a (3, H, W) or (1, H, W) or (H, W) tensor with values in [0, 1]. */
export function toRgbBytes(t: Tensor): { data: Uint8Array; width: number; height: number } {
  const shape = t.ndim === 2 ? [1, ...t.shape] : t.shape;
  if (shape.length !== 3 || (shape[0] !== 1 && shape[0] !== 3)) {
    throw new Error(`toRgbBytes: expected (3, H, W), (1, H, W) or (H, W), got ${fmt(t.shape)}`);
  }
  const [c, h, w] = shape;
  const plane = h * w;
  const out = new Uint8Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let k = 0; k < 3; k++) {
      const v = Number(t.data[(c === 3 ? k : 0) * plane + i]);
      out[3 * i + k] = Math.max(0, Math.min(255, Math.round(v * 255)));
    }
  }
  return { data: out, width: w, height: h };
}

/** Encodes interleaved RGB(A) bytes as PNG. */
export async function encodePng(
  data: Uint8Array,
  width: number,
  height: number,
  channels: 3 | 4 = 3,
): Promise<Uint8Array> {
  const buf = await sharp(data, { raw: { width, height, channels } }).png().toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

/** Writes a (3, H, W)/(1, H, W)/(H, W) tensor in [0, 1] as PNG, atomically. */
export async function writeImage(path: string, t: Tensor): Promise<void> {
  const { data, width, height } = toRgbBytes(t);
  await writePngBytes(path, data, width, height);
}

export async function writePngBytes(
  path: string,
  rgb: Uint8Array,
  width: number,
  height: number,
): Promise<void> {
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomic(path, await encodePng(rgb, width, height));
}

export type Colormap = 'viridis' | 'inferno' | 'jet' | 'gray';

// Anchor colors sampled from matplotlib's maps; linear interpolation between them.
const MAPS: Record<Exclude<Colormap, 'gray'>, number[][]> = {
  viridis: [
    [68, 1, 84],
    [72, 40, 120],
    [62, 74, 137],
    [49, 104, 142],
    [38, 130, 142],
    [31, 158, 137],
    [53, 183, 121],
    [109, 205, 89],
    [180, 222, 44],
    [253, 231, 37],
  ],
  inferno: [
    [0, 0, 4],
    [31, 12, 72],
    [85, 15, 109],
    [136, 34, 106],
    [186, 54, 85],
    [227, 89, 51],
    [249, 140, 10],
    [249, 201, 50],
    [252, 255, 164],
  ],
  jet: [
    [0, 0, 128],
    [0, 0, 255],
    [0, 128, 255],
    [0, 255, 255],
    [128, 255, 128],
    [255, 255, 0],
    [255, 128, 0],
    [255, 0, 0],
    [128, 0, 0],
  ],
};

/** RGB bytes for v in [0, 1]. */
export function colorAt(map: Colormap, v: number): [number, number, number] {
  const x = Math.max(0, Math.min(1, Number.isFinite(v) ? v : 0));
  if (map === 'gray') {
    const g = Math.round(x * 255);
    return [g, g, g];
  }
  const anchors = MAPS[map];
  const p = x * (anchors.length - 1);
  const i = Math.min(Math.floor(p), anchors.length - 2);
  const f = p - i;
  const a = anchors[i];
  const b = anchors[i + 1];
  return [0, 1, 2].map((k) => Math.round(a[k] + (b[k] - a[k]) * f)) as [number, number, number];
}

/** Scales a map to [0, 1] by its min and max (a constant map becomes zeros). */
export function normalizeMap(values: ArrayLike<number>): Float32Array {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isFinite(v)) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  const out = new Float32Array(values.length);
  const range = hi - lo;
  if (!(range > 0)) return out;
  for (let i = 0; i < values.length; i++) out[i] = Number.isFinite(values[i]) ? (values[i] - lo) / range : 0;
  return out;
}

/** A (h, w) map rendered through a colormap as RGB bytes (normalized to its range first). */
export function heatmapRgb(
  map: Tensor,
  colormap: Colormap = 'inferno',
): { data: Uint8Array; width: number; height: number } {
  if (map.ndim !== 2) throw new Error(`heatmapRgb: expected an (h, w) map, got ${fmt(map.shape)}`);
  const [h, w] = map.shape;
  const norm = normalizeMap(map.data);
  const out = new Uint8Array(3 * h * w);
  for (let i = 0; i < h * w; i++) out.set(colorAt(colormap, norm[i]), 3 * i);
  return { data: out, width: w, height: h };
}

/** Resizes interleaved RGB bytes with sharp (bilinear by default, 'nearest' keeps blocks visible). */
export async function resizeRgb(
  rgb: { data: Uint8Array; width: number; height: number },
  width: number,
  height: number,
  kernel: 'nearest' | 'linear' | 'cubic' = 'linear',
): Promise<Uint8Array> {
  const kernels = {
    nearest: sharp.kernel.nearest,
    linear: sharp.kernel.linear,
    cubic: sharp.kernel.cubic,
  } as const;
  const buf = await sharp(rgb.data, { raw: { width: rgb.width, height: rgb.height, channels: 3 } })
    .resize(width, height, { kernel: kernels[kernel], fit: 'fill' })
    .raw()
    .toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

/**
 * Blends a heatmap over an image: the map (h, w) is upsampled to the image size and mixed with
 * `alpha` (0 = image only). Returns RGB bytes at the image's size.
 */
export async function overlayHeatmap(
  image: Tensor,
  map: Tensor,
  options: { alpha?: number; colormap?: Colormap; smooth?: boolean } = {},
): Promise<{ data: Uint8Array; width: number; height: number }> {
  const base = toRgbBytes(image);
  const heat = await resizeRgb(
    heatmapRgb(map, options.colormap ?? 'inferno'),
    base.width,
    base.height,
    options.smooth === false ? 'nearest' : 'cubic',
  );
  const alpha = options.alpha ?? 0.55;
  const out = new Uint8Array(base.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.round((1 - alpha) * base.data[i] + alpha * heat[i]);
  return { data: out, width: base.width, height: base.height };
}
