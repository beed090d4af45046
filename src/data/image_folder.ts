/**
 * A user's own images, one class per subfolder (torchvision's ImageFolder): DIR/<class>/<image>.
 * Classes are the subfolder names in sorted order; every image is decoded by sharp (in libuv's
 * thread pool, so the loader's prefetch overlaps it with compute), resized to one size and
 * converted to grayscale or RGB.
 */
import { readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import sharp from 'sharp';
import type { ImageDataset, Sample } from './dataset.js';

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp', '.gif', '.tif', '.tiff', '.avif']);

export interface ImageFolderOptions {
  /** Output size, [height, width] or one number for both. */
  size: number | readonly [number, number];
  /** 1 (grayscale) or 3 (RGB, default). */
  channels?: 1 | 3;
  /** How the image is fitted to the size: 'cover' scales the short side and center-crops (default), 'fill' stretches. */
  fit?: 'cover' | 'fill';
  /** Keep decoded images in memory after first use (default true: small datasets are read every epoch). */
  cache?: boolean;
}

export class ImageFolder implements ImageDataset {
  readonly classes: string[];
  readonly samples: Array<{ path: string; label: number }>;
  readonly imageShape: readonly [number, number, number];
  private readonly cache: Map<number, Sample> | null;

  constructor(
    readonly root: string,
    private readonly options: ImageFolderOptions,
  ) {
    let entries: string[];
    try {
      entries = readdirSync(root).sort();
    } catch (e) {
      throw new Error(
        `image folder ${root}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); pass a directory with one subfolder per class`,
      );
    }
    this.classes = [];
    this.samples = [];
    for (const name of entries) {
      const dir = join(root, name);
      if (name.startsWith('.') || !statSync(dir).isDirectory()) continue;
      const files = readdirSync(dir)
        .filter((f) => IMAGE_EXTENSIONS.has(extname(f).toLowerCase()))
        .sort();
      if (files.length === 0) continue;
      const label = this.classes.length;
      this.classes.push(name);
      for (const f of files) this.samples.push({ path: join(dir, f), label });
    }
    if (this.samples.length === 0) {
      throw new Error(
        `image folder ${root}: no images found; expected ${root}/<class>/<image>.png|jpg|webp (one subfolder per class)`,
      );
    }
    const [h, w] = typeof options.size === 'number' ? [options.size, options.size] : options.size;
    if (!(Number.isInteger(h) && Number.isInteger(w) && h > 0 && w > 0)) {
      throw new Error(`image folder ${root}: size must be positive integers, got ${options.size}`);
    }
    const channels = options.channels ?? 3;
    if (channels !== 1 && channels !== 3)
      throw new Error(`image folder ${root}: channels must be 1 or 3, got ${channels}`);
    this.imageShape = [channels, h, w];
    this.cache = options.cache === false ? null : new Map();
  }

  get length(): number {
    return this.samples.length;
  }

  label(index: number): number {
    return this.samples[index].label;
  }

  async get(index: number): Promise<Sample> {
    const hit = this.cache?.get(index);
    if (hit) return hit;
    const { path, label } = this.samples[index];
    const [c, h, w] = this.imageShape;
    let pixels: Buffer;
    try {
      let pipeline = sharp(path)
        .rotate()
        .removeAlpha()
        .resize(w, h, { fit: this.options.fit ?? 'cover' });
      pipeline = c === 1 ? pipeline.grayscale() : pipeline.toColourspace('srgb');
      pixels = await pipeline.raw().toBuffer();
    } catch (e) {
      throw new Error(
        `image folder: ${path} is not a readable image (${(e as Error).message.split('\n')[0]})`,
      );
    }
    // sharp returns interleaved HWC bytes; samples are CHW float in [0, 1].
    const plane = h * w;
    const stride = pixels.length / plane;
    const data = new Float32Array(c * plane);
    for (let i = 0; i < plane; i++)
      for (let k = 0; k < c; k++) data[k * plane + i] = pixels[i * stride + k] / 255;
    const sample = { image: { data, channels: c, height: h, width: w }, label };
    this.cache?.set(index, sample);
    return sample;
  }
}
