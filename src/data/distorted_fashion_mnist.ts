/**
 * Distorted Fashion-MNIST: the spatial transformer paper's distorted-MNIST protocols applied to
 * Fashion-MNIST. Each 28x28 item is rotated (+-60 degrees), scaled (0.7-1.2) and placed at a random
 * position of a larger canvas (42x42 for RTS, 60x60 for the cluttered variant), optionally among
 * clutter: random small crops of other items scattered over the canvas. Every sample is a pure
 * function of (seed, index) — the distortion of item i never depends on which items were read
 * before — so a split is reproducible from its seed alone and can be rendered lazily.
 */
import { Generator } from '../ops/creation.js';
import type { ImageDataset, Sample } from './dataset.js';
import { FashionMnist, type LoadFashionMnistOptions, loadFashionMnist, type Split } from './fashion_mnist.js';
import { deriveSeed } from './loader.js';

export interface DistortionOptions {
  /** Side of the square canvas (default 42; the paper's cluttered protocol uses 60). */
  canvas?: number;
  /** Largest rotation in degrees, drawn uniformly in [-rotation, rotation] (default 60). */
  rotation?: number;
  /** Range of the isotropic scale, drawn uniformly (default [0.7, 1.2]). */
  scale?: readonly [number, number];
  /** Place the item anywhere its scaled box fits (default true); false keeps it centered. */
  translate?: boolean;
  /** Number of clutter pieces (default 0). */
  clutter?: number;
  /** Side of each clutter piece (default 6). */
  clutterSize?: number;
  seed?: number;
}

/** One clutter piece: a clutterSize square cut from item `source` at (sx, sy), pasted at (x, y). */
export interface ClutterPiece {
  source: number;
  sx: number;
  sy: number;
  x: number;
  y: number;
}

/** The distortion of one sample. */
export interface Distortion {
  /** Rotation in degrees; positive turns the item clockwise on screen (y points down). */
  angle: number;
  scale: number;
  /** Where the item's center lands, in canvas pixel coordinates (pixel centers are integers). */
  cx: number;
  cy: number;
  clutter: ClutterPiece[];
}

/** A dataset whose items can be read synchronously (in memory), as clutter needs other items. */
export type InMemoryImageDataset = Omit<ImageDataset, 'get'> & { get(index: number): Sample };

/**
 * Bilinear sample of a single-channel (h, w) image at (x, y) in pixel coordinates; zero outside.
 */
function bilinear(src: Float32Array, h: number, w: number, x: number, y: number): number {
  const x0 = Math.floor(x);
  const y0 = Math.floor(y);
  const fx = x - x0;
  const fy = y - y0;
  let v = 0;
  for (let dy = 0; dy <= 1; dy++) {
    const yy = y0 + dy;
    if (yy < 0 || yy >= h) continue;
    const wy = dy ? fy : 1 - fy;
    for (let dx = 0; dx <= 1; dx++) {
      const xx = x0 + dx;
      if (xx < 0 || xx >= w) continue;
      v += wy * (dx ? fx : 1 - fx) * src[yy * w + xx];
    }
  }
  return v;
}

/**
 * Draws a single-channel (h, w) item into a square canvas (n, n) under distortion d, keeping the
 * maximum of what the canvas holds and the item. Inverse mapping with bilinear sampling: canvas pixel
 * p reads the item at R(-angle) (p - c) / scale + the item's center.
 */
export function drawDistorted(
  item: Float32Array,
  h: number,
  w: number,
  d: Pick<Distortion, 'angle' | 'scale' | 'cx' | 'cy'>,
  canvas: Float32Array,
  n: number,
): void {
  const rad = (d.angle * Math.PI) / 180;
  const cos = Math.cos(rad) / d.scale;
  const sin = Math.sin(rad) / d.scale;
  const [icx, icy] = [(w - 1) / 2, (h - 1) / 2];
  for (let y = 0; y < n; y++) {
    const dy = y - d.cy;
    for (let x = 0; x < n; x++) {
      const dx = x - d.cx;
      const sx = cos * dx + sin * dy + icx;
      const sy = -sin * dx + cos * dy + icy;
      if (sx <= -1 || sy <= -1 || sx >= w || sy >= h) continue;
      const v = bilinear(item, h, w, sx, sy);
      if (v > canvas[y * n + x]) canvas[y * n + x] = v;
    }
  }
}

export class DistortedDataset implements ImageDataset {
  readonly length: number;
  readonly classes: readonly string[];
  readonly imageShape: readonly [number, number, number];
  readonly canvas: number;
  readonly rotation: number;
  readonly scaleRange: readonly [number, number];
  readonly translate: boolean;
  readonly clutter: number;
  readonly clutterSize: number;
  readonly seed: number;
  private readonly itemSize: [number, number];

  constructor(
    readonly base: InMemoryImageDataset,
    options: DistortionOptions = {},
  ) {
    const [c, h, w] = base.imageShape;
    if (c !== 1)
      throw new Error(
        `DistortedDataset: the base dataset must be grayscale (1, H, W), got (${c}, ${h}, ${w})`,
      );
    this.canvas = options.canvas ?? 42;
    this.rotation = options.rotation ?? 60;
    this.scaleRange = options.scale ?? [0.7, 1.2];
    this.translate = options.translate ?? true;
    this.clutter = options.clutter ?? 0;
    this.clutterSize = options.clutterSize ?? 6;
    this.seed = options.seed ?? 0;
    if (!(Number.isInteger(this.canvas) && this.canvas > 0))
      throw new Error(`DistortedDataset: canvas must be a positive integer, got ${this.canvas}`);
    const [s0, s1] = this.scaleRange;
    if (!(s0 > 0 && s1 >= s0))
      throw new Error(`DistortedDataset: scale must be [min, max] with 0 < min <= max, got [${s0}, ${s1}]`);
    if (!(Number.isInteger(this.clutter) && this.clutter >= 0))
      throw new Error(`DistortedDataset: clutter must be a non-negative integer, got ${this.clutter}`);
    if (
      this.clutter > 0 &&
      !(this.clutterSize >= 1 && this.clutterSize <= Math.min(h, w) && this.clutterSize <= this.canvas)
    ) {
      throw new Error(
        `DistortedDataset: clutterSize ${this.clutterSize} must be between 1 and the item (${h}x${w}) and canvas (${this.canvas}) sizes`,
      );
    }
    if (this.clutter > 0 && base.length < 2)
      throw new Error('DistortedDataset: clutter needs at least two items in the base dataset');
    this.length = base.length;
    this.classes = base.classes;
    this.imageShape = [1, this.canvas, this.canvas];
    this.itemSize = [h, w];
  }

  /** The distortion drawn for sample `index` (a function of seed and index only). */
  distortion(index: number): Distortion {
    if (!(Number.isInteger(index) && index >= 0 && index < this.length)) {
      throw new Error(`DistortedDataset: index ${index} is outside 0..${this.length - 1}`);
    }
    const rng = new Generator(deriveSeed(this.seed, index));
    const uniform = (a: number, b: number) => a + (b - a) * rng.next();
    const angle = uniform(-this.rotation, this.rotation);
    const scale = uniform(this.scaleRange[0], this.scaleRange[1]);
    // The scaled item's box [c - s*h/2, c + s*h/2] stays inside the canvas [-0.5, canvas - 0.5]
    // (rotated corners may leave it; Fashion-MNIST corners are background).
    const [h, w] = this.itemSize;
    const range = (half: number) => {
      const lo = half - 0.5;
      const hi = this.canvas - 0.5 - half;
      const mid = (this.canvas - 1) / 2;
      return this.translate && hi > lo ? uniform(lo, hi) : mid;
    };
    const cx = range((scale * w) / 2);
    const cy = range((scale * h) / 2);
    const clutter: ClutterPiece[] = [];
    for (let k = 0; k < this.clutter; k++) {
      let source = rng.int(0, this.length - 1);
      if (source >= index) source++; // any item but this one
      clutter.push({
        source,
        sx: rng.int(0, w - this.clutterSize + 1),
        sy: rng.int(0, h - this.clutterSize + 1),
        x: rng.int(0, this.canvas - this.clutterSize + 1),
        y: rng.int(0, this.canvas - this.clutterSize + 1),
      });
    }
    return { angle, scale, cx, cy, clutter };
  }

  /** Renders sample `index`: clutter first, then the distorted item, combined by maximum. */
  get(index: number): Sample {
    const d = this.distortion(index);
    const n = this.canvas;
    const [h, w] = this.itemSize;
    const out = new Float32Array(n * n);
    const k = this.clutterSize;
    for (const piece of d.clutter) {
      const src = this.base.get(piece.source).image.data;
      for (let y = 0; y < k; y++) {
        for (let x = 0; x < k; x++) {
          const o = (piece.y + y) * n + piece.x + x;
          out[o] = Math.max(out[o], src[(piece.sy + y) * w + piece.sx + x]);
        }
      }
    }
    const { image, label } = this.base.get(index);
    drawDistorted(image.data, h, w, d, out, n);
    return { image: { data: out, channels: 1, height: n, width: n }, label };
  }

  label(index: number): number {
    return this.base.label(index);
  }
}

export interface LoadDistortedOptions extends DistortionOptions, LoadFashionMnistOptions {
  /** Use only the first `limit` items of the split (Fashion-MNIST's classes are balanced in any prefix). */
  limit?: number;
}

/** One split of Fashion-MNIST (found or downloaded as loadFashionMnist does), distorted. */
export async function loadDistortedFashionMnist(
  split: Split,
  options: LoadDistortedOptions = {},
): Promise<DistortedDataset> {
  let base = await loadFashionMnist(split, options);
  const { limit } = options;
  if (limit !== undefined) {
    if (!(Number.isInteger(limit) && limit > 0 && limit <= base.length)) {
      throw new Error(
        `loadDistortedFashionMnist: limit must be an integer in 1..${base.length}, got ${limit}`,
      );
    }
    const [, h, w] = base.imageShape;
    base = new FashionMnist(base.images.subarray(0, limit * h * w), base.labels.subarray(0, limit), h, w);
  }
  return new DistortedDataset(base, options);
}
