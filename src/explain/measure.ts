/**
 * Does a map look at the object? The share of a map's mass that falls on the object's pixels,
 * against the share of the image the object covers (a map blind to the object scores the latter).
 */
import { fmt } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';

export interface MassShare {
  /** fraction of the map's mass on mask pixels, in [0, 1] */
  massInside: number;
  /** fraction of the image's pixels in the mask, in [0, 1] */
  areaInside: number;
  /** massInside / areaInside: above 1 when the map concentrates on the mask */
  concentration: number;
}

/**
 * `map` (gh, gw) covers an (H, W) image: pixel (y, x) lies in cell (floor(y gh / H), floor(x gw / W)),
 * and each cell's value is spread evenly over its pixels. `mask` (H, W) is non-zero on the object.
 * Negative map values are not mass: pass a non-negative map (rollout, flow and the CAMs are).
 */
export function maskMassShare(map: Tensor, mask: Tensor): MassShare {
  if (map.ndim !== 2 || mask.ndim !== 2) {
    throw new Error(
      `maskMassShare: expected a (gh, gw) map and an (H, W) mask, got ${fmt(map.shape)} and ${fmt(mask.shape)}`,
    );
  }
  const [gh, gw] = map.shape;
  const [h, w] = mask.shape;
  if (gh > h || gw > w) {
    throw new Error(
      `maskMassShare: the map ${fmt(map.shape)} is finer than the mask ${fmt(mask.shape)}; pass the image-sized mask`,
    );
  }
  const cellOfRow = Int32Array.from({ length: h }, (_, y) => Math.floor((y * gh) / h));
  const cellOfCol = Int32Array.from({ length: w }, (_, x) => Math.floor((x * gw) / w));
  const pixelsPerCell = new Float64Array(gh * gw);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) pixelsPerCell[cellOfRow[y] * gw + cellOfCol[x]] += 1;
  let total = 0;
  for (let i = 0; i < gh * gw; i++) {
    const v = Number(map.data[i]);
    if (!(v >= 0))
      throw new Error(
        `maskMassShare: map value ${v} at ${i} is negative or NaN; a mass share needs a non-negative map`,
      );
    total += v;
  }
  let inside = 0;
  let area = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (Number(mask.data[y * w + x]) === 0) continue;
      const cell = cellOfRow[y] * gw + cellOfCol[x];
      inside += Number(map.data[cell]) / pixelsPerCell[cell];
      area += 1;
    }
  }
  const massInside = total > 0 ? inside / total : 0;
  const areaInside = area / (h * w);
  return { massInside, areaInside, concentration: areaInside > 0 ? massInside / areaInside : 0 };
}

/**
 * maskMassShare with the object taken as the pixels brighter than `threshold` (mean over channels):
 * for images on an empty background such as Fashion-MNIST, where the garment is everything not black.
 */
export function objectMassShare(image: Tensor, map: Tensor, threshold = 0.1): MassShare {
  if (image.ndim !== 3)
    throw new Error(`objectMassShare: expected a (C, H, W) image, got ${fmt(image.shape)}`);
  const [c, h, w] = image.shape;
  const plane = h * w;
  const mask = new Uint8Array(plane);
  for (let i = 0; i < plane; i++) {
    let v = 0;
    for (let k = 0; k < c; k++) v += Number(image.data[k * plane + i]);
    mask[i] = v / c > threshold ? 1 : 0;
  }
  return maskMassShare(map, new Tensor(mask, [h, w]));
}
