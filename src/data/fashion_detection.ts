/**
 * A detection dataset built from Fashion-MNIST: 1-4 clothing items, each resized by a random scale,
 * pasted without overlap onto a square canvas, optionally over background noise. Boxes are the
 * exact extent of each pasted item's visible pixels (pixel-edge coordinates: pixel x spans [x, x+1)),
 * labels its Fashion-MNIST class. Sample i is a pure function of (seed, i): the split is
 * reproducible from its seed and rendered lazily. Train samples draw items from Fashion-MNIST's
 * training split, test samples from its test split, so no item is shared.
 */
import { Generator } from '../ops/creation.js';
import { Tensor } from '../tensor/tensor.js';
import type { Image } from './dataset.js';
import {
  FASHION_MNIST_CLASSES,
  type FashionMnist,
  type LoadFashionMnistOptions,
  loadFashionMnist,
  type Split,
} from './fashion_mnist.js';
import { deriveSeed } from './loader.js';

export interface FashionDetectionOptions {
  /** Number of samples (default 10000). */
  length?: number;
  /** Side of the square canvas in pixels (default 64). */
  canvas?: number;
  /** Items per image, drawn uniformly in [min, max] (default [1, 4]); fewer when they do not fit. */
  items?: readonly [number, number];
  /** Item side as a multiple of 28 pixels, uniform in [min, max] (default [0.6, 1.0]). */
  scale?: readonly [number, number];
  /** Standard deviation of Gaussian background noise, clipped to [0, 1] (default 0). */
  noise?: number;
  /** A pixel is part of an item's box when its intensity exceeds this (default 0.1). */
  boxThreshold?: number;
  seed?: number;
}

export interface DetectionSample {
  /** (1, canvas, canvas) in [0, 1]. */
  image: Image;
  labels: number[];
  /** (x1, y1, x2, y2) pixel-edge coordinates, one per label. */
  boxes: Array<[number, number, number, number]>;
}

/** Bilinear resize of a (h, w) image to (s, s) with pixel centers aligned (align_corners false). */
function resizeSquare(src: Uint8Array, h: number, w: number, s: number): Float32Array {
  const out = new Float32Array(s * s);
  for (let y = 0; y < s; y++) {
    const sy = Math.min(Math.max(((y + 0.5) * h) / s - 0.5, 0), h - 1);
    const y0 = Math.floor(sy);
    const y1 = Math.min(y0 + 1, h - 1);
    const fy = sy - y0;
    for (let x = 0; x < s; x++) {
      const sx = Math.min(Math.max(((x + 0.5) * w) / s - 0.5, 0), w - 1);
      const x0 = Math.floor(sx);
      const x1 = Math.min(x0 + 1, w - 1);
      const fx = sx - x0;
      const top = src[y0 * w + x0] * (1 - fx) + src[y0 * w + x1] * fx;
      const bottom = src[y1 * w + x0] * (1 - fx) + src[y1 * w + x1] * fx;
      out[y * s + x] = (top * (1 - fy) + bottom * fy) / 255;
    }
  }
  return out;
}

/** The extent [x1, y1, x2, y2) of pixels above threshold in an (s, s) patch, or null if none. */
function extent(patch: Float32Array, s: number, threshold: number): [number, number, number, number] | null {
  let x1 = s;
  let y1 = s;
  let x2 = -1;
  let y2 = -1;
  for (let y = 0; y < s; y++) {
    for (let x = 0; x < s; x++) {
      if (patch[y * s + x] <= threshold) continue;
      x1 = Math.min(x1, x);
      y1 = Math.min(y1, y);
      x2 = Math.max(x2, x);
      y2 = Math.max(y2, y);
    }
  }
  return x2 < 0 ? null : [x1, y1, x2 + 1, y2 + 1];
}

export class FashionDetection {
  readonly length: number;
  readonly canvas: number;
  readonly classes: readonly string[] = FASHION_MNIST_CLASSES;
  readonly items: readonly [number, number];
  readonly scale: readonly [number, number];
  readonly noise: number;
  readonly boxThreshold: number;
  readonly seed: number;

  constructor(
    readonly source: FashionMnist,
    options: FashionDetectionOptions = {},
  ) {
    this.length = options.length ?? 10000;
    this.canvas = options.canvas ?? 64;
    this.items = options.items ?? [1, 4];
    this.scale = options.scale ?? [0.6, 1.0];
    this.noise = options.noise ?? 0;
    this.boxThreshold = options.boxThreshold ?? 0.1;
    this.seed = options.seed ?? 0;
    const [i0, i1] = this.items;
    const [s0, s1] = this.scale;
    if (!(Number.isInteger(i0) && Number.isInteger(i1) && i0 >= 0 && i1 >= i0)) {
      throw new Error(
        `FashionDetection: items must be integers [min, max] with 0 <= min <= max, got [${i0}, ${i1}]`,
      );
    }
    if (!(s0 > 0 && s1 >= s0 && Math.round(28 * s1) <= this.canvas)) {
      throw new Error(
        `FashionDetection: scale [${s0}, ${s1}] must satisfy 0 < min <= max and fit the ${this.canvas}-pixel canvas`,
      );
    }
    if (!(Number.isInteger(this.length) && this.length >= 0)) {
      throw new Error(`FashionDetection: length must be a non-negative integer, got ${this.length}`);
    }
  }

  get(index: number): DetectionSample {
    if (!(Number.isInteger(index) && index >= 0 && index < this.length)) {
      throw new Error(`FashionDetection: index ${index} is outside 0..${this.length - 1}`);
    }
    const g = new Generator(deriveSeed(this.seed, index));
    const n = this.canvas;
    const pixels = new Float32Array(n * n);
    if (this.noise > 0) {
      for (let i = 0; i < pixels.length; i++) pixels[i] = Math.min(1, Math.max(0, this.noise * g.normal()));
    }
    const [i0, i1] = this.items;
    const wanted = i0 + Math.floor(g.next() * (i1 - i0 + 1));
    const labels: number[] = [];
    const boxes: Array<[number, number, number, number]> = [];
    const [, h, w] = this.source.imageShape;
    for (let k = 0; k < wanted; k++) {
      const item = Math.floor(g.next() * this.source.length);
      const s = Math.round(28 * (this.scale[0] + g.next() * (this.scale[1] - this.scale[0])));
      const patch = resizeSquare(this.source.images.subarray(item * h * w, (item + 1) * h * w), h, w, s);
      const box = extent(patch, s, this.boxThreshold);
      if (!box) continue;
      // Up to 50 tries to place the item's box with a one-pixel gap to every box placed so far.
      for (let attempt = 0; attempt < 50; attempt++) {
        const ox = Math.floor(g.next() * (n - s + 1));
        const oy = Math.floor(g.next() * (n - s + 1));
        const placed: [number, number, number, number] = [box[0] + ox, box[1] + oy, box[2] + ox, box[3] + oy];
        const clash = boxes.some(
          (b) => placed[0] < b[2] + 1 && b[0] < placed[2] + 1 && placed[1] < b[3] + 1 && b[1] < placed[3] + 1,
        );
        if (clash) continue;
        for (let y = box[1]; y < box[3]; y++) {
          for (let x = box[0]; x < box[2]; x++) {
            const v = patch[y * s + x];
            const p = (y + oy) * n + x + ox;
            if (v > pixels[p]) pixels[p] = v;
          }
        }
        labels.push(this.source.labels[item]);
        boxes.push(placed);
        break;
      }
    }
    return { image: { data: pixels, channels: 1, height: n, width: n }, labels, boxes };
  }
}

/** One split: train samples from Fashion-MNIST train items, test samples from test items. */
export async function loadFashionDetection(
  split: Split,
  options: FashionDetectionOptions & LoadFashionMnistOptions = {},
): Promise<FashionDetection> {
  const source = await loadFashionMnist(split, options);
  return new FashionDetection(source, {
    ...options,
    seed: deriveSeed(options.seed ?? 0, split === 'train' ? 1 : 2),
  });
}

/** DETR's target format: labels and boxes as normalized (cx, cy, w, h). */
export function toDetrTarget(sample: DetectionSample): { labels: number[]; boxes: Tensor } {
  const n = sample.image.width;
  const m = sample.image.height;
  const data = new Float32Array(4 * sample.boxes.length);
  sample.boxes.forEach(([x1, y1, x2, y2], k) => {
    data.set([(x1 + x2) / 2 / n, (y1 + y2) / 2 / m, (x2 - x1) / n, (y2 - y1) / m], 4 * k);
  });
  return { labels: [...sample.labels], boxes: new Tensor(data, [sample.boxes.length, 4]) };
}

/** Samples stacked into a (B, C, H, W) batch (all of one size). */
export function stackImages(samples: readonly DetectionSample[]): Tensor {
  const { channels, height, width } = samples[0].image;
  const plane = channels * height * width;
  const out = new Float32Array(samples.length * plane);
  samples.forEach((s, i) => {
    if (s.image.data.length !== plane)
      throw new Error('stackImages: samples differ in size; pad them to one size first');
    out.set(s.image.data, i * plane);
  });
  return new Tensor(out, [samples.length, channels, height, width]);
}
