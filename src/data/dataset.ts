/**
 * The dataset interface the loader and trainer share: indexed samples of one fixed image shape, each
 * an image in [0, 1] (channels-first) and an integer class label.
 */
import { Generator } from '../ops/creation.js';

/** One image, (C, H, W) row-major float32. */
export interface Image {
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
}

export interface Sample {
  image: Image;
  label: number;
}

export interface ImageDataset {
  readonly length: number;
  /** Class names; labels index into this. */
  readonly classes: readonly string[];
  /** (C, H, W) of every image. */
  readonly imageShape: readonly [number, number, number];
  /** A sample; may resolve asynchronously (decoding from disk). */
  get(index: number): Sample | Promise<Sample>;
  /** The label alone, without decoding the image (for stratified subsets and class counts). */
  label(index: number): number;
}

/** A view of `dataset` restricted to `indices` (in that order). */
export function subsetDataset(dataset: ImageDataset, indices: readonly number[]): ImageDataset {
  for (const i of indices) {
    if (!(Number.isInteger(i) && i >= 0 && i < dataset.length)) {
      throw new Error(`subsetDataset: index ${i} is outside the dataset (0..${dataset.length - 1})`);
    }
  }
  const idx = [...indices];
  return {
    length: idx.length,
    classes: dataset.classes,
    imageShape: dataset.imageShape,
    get: (i) => dataset.get(idx[i]),
    label: (i) => dataset.label(idx[i]),
  };
}

/**
 * `n` samples drawn with a seed, the same share of every class (up to rounding), for training-set-size
 * experiments where a plain random cut of 1000 could leave a class thin.
 */
export function stratifiedSubset(dataset: ImageDataset, n: number, seed: number): ImageDataset {
  if (!(Number.isInteger(n) && n > 0 && n <= dataset.length)) {
    throw new Error(`stratifiedSubset: n must be an integer in 1..${dataset.length}, got ${n}`);
  }
  const byClass: number[][] = dataset.classes.map(() => []);
  for (let i = 0; i < dataset.length; i++) byClass[dataset.label(i)].push(i);
  const rng = new Generator(seed);
  for (const list of byClass) rng.shuffle(list);
  // Round-robin over classes keeps the shares equal while any class still has samples.
  const picked: number[] = [];
  for (let k = 0; picked.length < n; k++) {
    for (const list of byClass) if (k < list.length && picked.length < n) picked.push(list[k]);
  }
  return subsetDataset(
    dataset,
    picked.sort((a, b) => a - b),
  );
}
