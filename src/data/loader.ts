/**
 * Batches from an ImageDataset: a seeded shuffle per epoch, per-sample transforms, optional
 * Mixup/CutMix, and a prefetch queue. Every random choice of batch b in epoch e comes from a
 * generator seeded by (seed, e, b), so any batch can be rebuilt exactly from its coordinates — which
 * is what lets training resume mid-epoch with the same data. Prefetching starts the next batches'
 * loading (sharp decodes run in libuv's thread pool) before the current one is handed out.
 */
import { Generator } from '../ops/creation.js';
import { Tensor } from '../tensor/tensor.js';
import type { ImageDataset, Sample } from './dataset.js';
import { type MixupOptions, mixupBatch, type Transform } from './transforms.js';

/** A 32-bit seed from several integers (splitmix-style mixing), stable across platforms. */
export function deriveSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const part of parts) {
    h = Math.imul(h ^ (part >>> 0), 0x01000193) >>> 0;
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d) >>> 0;
    h ^= h >>> 12;
    h = Math.imul(h, 0x297a2d39) >>> 0;
    h ^= h >>> 15;
  }
  return h >>> 0;
}

export interface Batch {
  /** (B, C, H, W) float32 */
  images: Tensor;
  /** (B,) int64 class indices */
  labels: Tensor;
  /** (B, K) soft targets when Mixup/CutMix is on, else null */
  targets: Tensor | null;
  /** Dataset indices of the samples, in batch order. */
  indices: number[];
  epoch: number;
  /** Position of this batch in its epoch. */
  batch: number;
}

export interface DataLoaderOptions {
  batchSize: number;
  shuffle?: boolean;
  seed?: number;
  /** Drop the last incomplete batch (default false). */
  dropLast?: boolean;
  transform?: Transform;
  mixup?: MixupOptions;
  /** Batches loaded ahead of the one being consumed (default 2; 0 loads on demand). */
  prefetch?: number;
}

export class DataLoader {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly prefetch: number;
  /** Milliseconds the consumer spent waiting for batches (how much loading stalled compute). */
  waitMs = 0;

  constructor(
    readonly dataset: ImageDataset,
    private readonly options: DataLoaderOptions,
  ) {
    const { batchSize, prefetch = 2 } = options;
    if (!(Number.isInteger(batchSize) && batchSize > 0)) {
      throw new Error(`DataLoader: batchSize must be a positive integer, got ${batchSize}`);
    }
    if (!(Number.isInteger(prefetch) && prefetch >= 0)) {
      throw new Error(`DataLoader: prefetch must be a non-negative integer, got ${prefetch}`);
    }
    if (dataset.length === 0) throw new Error('DataLoader: the dataset is empty');
    this.batchSize = batchSize;
    this.shuffle = options.shuffle ?? false;
    this.seed = options.seed ?? 0;
    this.dropLast = options.dropLast ?? false;
    this.prefetch = prefetch;
    if (this.dropLast && dataset.length < batchSize) {
      throw new Error(
        `DataLoader: dropLast with batchSize ${batchSize} leaves no batch from ${dataset.length} samples; lower the batch size`,
      );
    }
  }

  get numBatches(): number {
    const n = this.dataset.length / this.batchSize;
    return this.dropLast ? Math.floor(n) : Math.ceil(n);
  }

  /** The sample order of `epoch`. */
  order(epoch: number): number[] {
    const idx = Array.from({ length: this.dataset.length }, (_, i) => i);
    return this.shuffle ? new Generator(deriveSeed(this.seed, epoch, 0x5eed)).shuffle(idx) : idx;
  }

  /** Builds batch `batch` of `epoch` (deterministic in seed, epoch and batch). */
  async loadBatch(epoch: number, batch: number, order = this.order(epoch)): Promise<Batch> {
    const indices = order.slice(batch * this.batchSize, (batch + 1) * this.batchSize);
    const samples: Sample[] = await Promise.all(indices.map((i) => this.dataset.get(i)));
    const rng = new Generator(deriveSeed(this.seed, epoch, batch, 1));
    const transform = this.options.transform;
    const images = samples.map((s) => (transform ? transform(s.image, rng) : s.image));
    const { channels, height, width } = images[0];
    const size = channels * height * width;
    const data = new Float32Array(indices.length * size);
    images.forEach((img, i) => {
      if (img.channels !== channels || img.height !== height || img.width !== width) {
        throw new Error(
          `DataLoader: sample ${indices[i]} is ${img.channels}x${img.height}x${img.width} after transforms but sample ${indices[0]} is ${channels}x${height}x${width}; resize or crop to one size`,
        );
      }
      data.set(img.data, i * size);
    });
    const labels = Float64Array.from(samples, (s) => s.label);
    let targets: Tensor | null = null;
    if (this.options.mixup) {
      const mixed = mixupBatch(data, labels, [channels, height, width], this.options.mixup, rng);
      targets = new Tensor(mixed.targets, [indices.length, this.options.mixup.numClasses]);
    }
    return {
      images: new Tensor(data, [indices.length, channels, height, width]),
      labels: new Tensor(labels, [indices.length]),
      targets,
      indices,
      epoch,
      batch,
    };
  }

  /** The batches of `epoch` from `startBatch` on (to resume mid-epoch). */
  async *epoch(epoch: number, options: { startBatch?: number } = {}): AsyncGenerator<Batch> {
    const order = this.order(epoch);
    const total = this.numBatches;
    const queue: Array<Promise<Batch>> = [];
    let next = options.startBatch ?? 0;
    const enqueue = () => {
      const p = this.loadBatch(epoch, next++, order);
      // A failure surfaces when the batch is awaited; this only keeps it from being "unhandled" meanwhile.
      p.catch(() => {});
      queue.push(p);
    };
    while (queue.length > 0 || next < total) {
      while (next < total && queue.length <= this.prefetch) enqueue();
      const started = performance.now();
      const batch = await queue.shift()!;
      this.waitMs += performance.now() - started;
      yield batch;
    }
  }
}
