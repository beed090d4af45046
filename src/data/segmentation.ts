/**
 * Segmentation datasets: samples are an image (C, ...spatial) with a class index per pixel or voxel.
 *
 * - FashionSegmentation (2D): Fashion-MNIST detection canvases (fashion_detection.ts: 1-4 scaled
 *   items pasted without overlap) with a mask that gives every item pixel brighter than a threshold
 *   its item's class + 1; 0 is background. Train canvases use Fashion-MNIST's train items, test
 *   canvases its test items.
 * - Shapes3D (3D): volumes with 1-3 non-overlapping solids (sphere, cube, torus; cubes and tori
 *   randomly rotated, random sizes), each with its own intensity, over a background level with a
 *   linear bias field and Gaussian noise; the mask labels the voxels whose centers lie inside a solid.
 *
 * Sample i of either is a pure function of (seed, i), rendered on demand.
 */
import { Generator } from '../ops/creation.js';
import { Tensor } from '../tensor/tensor.js';
import { FashionDetection, type FashionDetectionOptions } from './fashion_detection.js';
import {
  FASHION_MNIST_CLASSES,
  type LoadFashionMnistOptions,
  loadFashionMnist,
  type Split,
} from './fashion_mnist.js';
import { deriveSeed } from './loader.js';

export interface SegmentationSample {
  /** (C, ...spatial) row-major. */
  image: Float32Array;
  /** Class index per pixel/voxel (...spatial); 0 is background. */
  mask: Uint8Array;
}

export interface SegmentationDataset {
  readonly length: number;
  /** Class names, background first. */
  readonly classes: readonly string[];
  /** (C, ...spatial) of every image. */
  readonly shape: readonly number[];
  get(index: number): SegmentationSample;
}

/** Samples `indices` as a batch: images (B, C, ...spatial) float32, masks (B, ...spatial) int32. */
export function segmentationBatch(
  dataset: SegmentationDataset,
  indices: readonly number[],
): { images: Tensor; masks: Tensor } {
  const plane = dataset.shape.reduce((a, b) => a * b, 1);
  const voxels = plane / dataset.shape[0];
  const images = new Float32Array(indices.length * plane);
  const masks = new Int32Array(indices.length * voxels);
  indices.forEach((idx, b) => {
    const s = dataset.get(idx);
    images.set(s.image, b * plane);
    masks.set(s.mask, b * voxels);
  });
  return {
    images: new Tensor(images, [indices.length, ...dataset.shape]),
    masks: new Tensor(masks, [indices.length, ...dataset.shape.slice(1)]),
  };
}

function checkLength(what: string, length: number): void {
  if (!(Number.isInteger(length) && length >= 0)) {
    throw new Error(`${what}: length must be a non-negative integer, got ${length}`);
  }
}

function checkIndex(what: string, index: number, length: number): void {
  if (!(Number.isInteger(index) && index >= 0 && index < length)) {
    throw new Error(`${what}: index ${index} is outside 0..${length - 1}`);
  }
}

export interface FashionSegmentationOptions extends Omit<FashionDetectionOptions, 'boxThreshold'> {
  /** An item pixel belongs to the item's class when its intensity exceeds this (default 0.1). */
  maskThreshold?: number;
}

export class FashionSegmentation implements SegmentationDataset {
  readonly classes: readonly string[] = ['background', ...FASHION_MNIST_CLASSES];
  readonly shape: readonly number[];
  readonly length: number;
  readonly noise: number;
  readonly maskThreshold: number;
  private readonly canvases: FashionDetection;

  constructor(
    source: ConstructorParameters<typeof FashionDetection>[0],
    options: FashionSegmentationOptions = {},
  ) {
    this.maskThreshold = options.maskThreshold ?? 0.1;
    this.noise = options.noise ?? 0;
    if (!(this.maskThreshold >= 0 && this.maskThreshold < 1)) {
      throw new Error(`FashionSegmentation: maskThreshold must be in [0, 1), got ${this.maskThreshold}`);
    }
    if (!(this.noise >= 0)) throw new Error(`FashionSegmentation: noise must be >= 0, got ${this.noise}`);
    // Canvases are rendered clean so that the mask sees item pixels only; the noise comes after.
    this.canvases = new FashionDetection(source, { ...options, noise: 0, boxThreshold: this.maskThreshold });
    this.length = this.canvases.length;
    this.shape = [1, this.canvases.canvas, this.canvases.canvas];
  }

  get(index: number): SegmentationSample {
    checkIndex('FashionSegmentation', index, this.length);
    const { image, labels, boxes } = this.canvases.get(index);
    const n = image.width;
    const pixels = image.data;
    const mask = new Uint8Array(n * n);
    boxes.forEach(([x1, y1, x2, y2], k) => {
      for (let y = y1; y < y2; y++) {
        for (let x = x1; x < x2; x++)
          if (pixels[y * n + x] > this.maskThreshold) mask[y * n + x] = labels[k] + 1;
      }
    });
    if (this.noise > 0) {
      const g = new Generator(deriveSeed(this.canvases.seed, index, 0x401));
      for (let i = 0; i < pixels.length; i++)
        pixels[i] = Math.min(1, Math.max(0, pixels[i] + this.noise * g.normal()));
    }
    return { image: pixels, mask };
  }
}

/** One split of the 2D set: train canvases from Fashion-MNIST train items, test from test items. */
export async function loadFashionSegmentation(
  split: Split,
  options: FashionSegmentationOptions & LoadFashionMnistOptions = {},
): Promise<FashionSegmentation> {
  const source = await loadFashionMnist(split, options);
  return new FashionSegmentation(source, {
    ...options,
    seed: deriveSeed(options.seed ?? 0, split === 'train' ? 1 : 2),
  });
}

export const SHAPES3D_CLASSES = ['background', 'sphere', 'cube', 'torus'] as const;

export interface Shapes3dOptions {
  /** Number of volumes (default 1000). */
  length?: number;
  /** Side of the cubic volume in voxels (default 32); object sizes scale with it. */
  size?: number;
  /** Solids per volume, uniform in [min, max] (default [1, 3]); fewer when they do not fit. */
  objects?: readonly [number, number];
  /** Standard deviation of the Gaussian noise (default 0.08). */
  noise?: number;
  /** Object size multiplier (default size / 32: the same share of the volume at any size). */
  objectScale?: number;
  seed?: number;
}

/** A random rotation matrix (row-major 3x3) from a uniformly drawn unit quaternion (Shoemake). */
function randomRotation(g: Generator): number[] {
  const u1 = g.next();
  const u2 = 2 * Math.PI * g.next();
  const u3 = 2 * Math.PI * g.next();
  const a = Math.sqrt(1 - u1);
  const b = Math.sqrt(u1);
  const [w, x, y, z] = [a * Math.sin(u2), a * Math.cos(u2), b * Math.sin(u3), b * Math.cos(u3)];
  return [
    1 - 2 * (y * y + z * z),
    2 * (x * y - z * w),
    2 * (x * z + y * w),
    2 * (x * y + z * w),
    1 - 2 * (x * x + z * z),
    2 * (y * z - x * w),
    2 * (x * z - y * w),
    2 * (y * z + x * w),
    1 - 2 * (x * x + y * y),
  ];
}

interface Solid {
  cls: 1 | 2 | 3;
  center: [number, number, number];
  /** Radius of a sphere that contains the solid. */
  extent: number;
  inside: (q: [number, number, number]) => boolean;
  rotation: number[];
}

/** The largest bounding-sphere radius drawSolid makes at scale 1 (a torus 7.5 + 2.8). */
const LARGEST_EXTENT = 10.3;

/** A solid of class 1 (sphere), 2 (cube) or 3 (torus) with random size (times `k`) and orientation. */
function drawSolid(cls: 1 | 2 | 3, g: Generator, k: number): Omit<Solid, 'center'> {
  const uniform = (lo: number, hi: number) => k * (lo + (hi - lo) * g.next());
  const rotation = randomRotation(g);
  if (cls === 1) {
    const r = uniform(4.5, 7);
    return { cls, extent: r, rotation, inside: ([x, y, z]) => x * x + y * y + z * z <= r * r };
  }
  if (cls === 2) {
    const a = uniform(3.5, 5.5); // half side
    return {
      cls,
      extent: a * Math.sqrt(3),
      rotation,
      inside: ([x, y, z]) => Math.abs(x) <= a && Math.abs(y) <= a && Math.abs(z) <= a,
    };
  }
  const major = uniform(5, 7.5);
  const minor = uniform(1.8, 2.8);
  return {
    cls,
    extent: major + minor,
    rotation,
    inside: ([x, y, z]) => {
      const ring = Math.sqrt(x * x + y * y) - major;
      return ring * ring + z * z <= minor * minor;
    },
  };
}

export class Shapes3D implements SegmentationDataset {
  readonly classes: readonly string[] = SHAPES3D_CLASSES;
  readonly shape: readonly number[];
  readonly length: number;
  readonly size: number;
  readonly objects: readonly [number, number];
  readonly noise: number;
  readonly objectScale: number;
  readonly seed: number;

  constructor(options: Shapes3dOptions = {}) {
    this.length = options.length ?? 1000;
    this.size = options.size ?? 32;
    this.objects = options.objects ?? [1, 3];
    this.noise = options.noise ?? 0.08;
    this.objectScale = options.objectScale ?? this.size / 32;
    this.seed = options.seed ?? 0;
    checkLength('Shapes3D', this.length);
    const [o0, o1] = this.objects;
    if (!(Number.isInteger(o0) && Number.isInteger(o1) && o0 >= 0 && o1 >= o0)) {
      throw new Error(
        `Shapes3D: objects must be integers [min, max] with 0 <= min <= max, got [${o0}, ${o1}]`,
      );
    }
    if (!(Number.isInteger(this.size) && this.size >= 16)) {
      throw new Error(`Shapes3D: size must be an integer >= 16, got ${this.size}`);
    }
    if (!(this.noise >= 0)) throw new Error(`Shapes3D: noise must be >= 0, got ${this.noise}`);
    const widest = 2 * LARGEST_EXTENT * this.objectScale;
    if (!(this.objectScale > 0 && widest + 3 <= this.size)) {
      throw new Error(
        `Shapes3D: objectScale ${this.objectScale} must be > 0 and fit the widest solid (${widest.toFixed(1)} voxels) in ${this.size}^3`,
      );
    }
    this.shape = [1, this.size, this.size, this.size];
  }

  get(index: number): SegmentationSample {
    checkIndex('Shapes3D', index, this.length);
    const g = new Generator(deriveSeed(this.seed, index));
    const n = this.size;
    const [o0, o1] = this.objects;
    const wanted = o0 + Math.floor(g.next() * (o1 - o0 + 1));
    const solids: Solid[] = [];
    for (let k = 0; k < wanted; k++) {
      const solid = drawSolid((1 + Math.floor(g.next() * 3)) as 1 | 2 | 3, g, this.objectScale);
      // Up to 50 tries to place its bounding sphere inside the volume, one voxel clear of the others.
      for (let attempt = 0; attempt < 50; attempt++) {
        const lo = solid.extent + 1;
        const span = n - 1 - 2 * lo;
        if (span < 0) break;
        const center: [number, number, number] = [
          lo + g.next() * span,
          lo + g.next() * span,
          lo + g.next() * span,
        ];
        const clash = solids.some(
          (o) =>
            Math.hypot(o.center[0] - center[0], o.center[1] - center[1], o.center[2] - center[2]) <
            o.extent + solid.extent + 1,
        );
        if (clash) continue;
        solids.push({ ...solid, center });
        break;
      }
    }
    const background = 0.25 * g.next();
    const gradient = [0, 1, 2].map(() => 0.2 * (g.next() - 0.5)); // linear bias field, per volume
    const brightness = solids.map(() => background + 0.35 + 0.45 * g.next());
    const image = new Float32Array(n * n * n);
    const mask = new Uint8Array(n * n * n);
    image.fill(background);
    solids.forEach((o, k) => {
      const r = o.rotation;
      const [cz, cy, cx] = o.center;
      const lo = (c: number) => Math.max(0, Math.floor(c - o.extent));
      const hi = (c: number) => Math.min(n - 1, Math.ceil(c + o.extent));
      for (let z = lo(cz); z <= hi(cz); z++) {
        for (let y = lo(cy); y <= hi(cy); y++) {
          for (let x = lo(cx); x <= hi(cx); x++) {
            const d = [z - cz, y - cy, x - cx];
            // local coordinates R^T d
            const q: [number, number, number] = [
              r[0] * d[0] + r[3] * d[1] + r[6] * d[2],
              r[1] * d[0] + r[4] * d[1] + r[7] * d[2],
              r[2] * d[0] + r[5] * d[1] + r[8] * d[2],
            ];
            if (!o.inside(q)) continue;
            const i = (z * n + y) * n + x;
            mask[i] = o.cls;
            image[i] = brightness[k];
          }
        }
      }
    });
    for (let z = 0; z < n; z++) {
      for (let y = 0; y < n; y++) {
        for (let x = 0; x < n; x++) {
          const i = (z * n + y) * n + x;
          const bias =
            1 + gradient[0] * (z / n - 0.5) + gradient[1] * (y / n - 0.5) + gradient[2] * (x / n - 0.5);
          image[i] = image[i] * bias + this.noise * g.normal();
        }
      }
    }
    return { image, mask };
  }
}

/** One split of the 3D set (train and test draw from different seeds). */
export function loadShapes3d(split: Split, options: Shapes3dOptions = {}): Shapes3D {
  return new Shapes3D({ ...options, seed: deriveSeed(options.seed ?? 0, split === 'train' ? 1 : 2) });
}
