/**
 * Pictures of segmentations: label maps blended over the grayscale image in one color per class
 * (2D), orthogonal slices through a volume with the same overlay (3D), and panels of several such
 * pictures side by side, enlarged with nearest-neighbour so pixels stay visible.
 */
import { writePngBytes } from '../io/image.js';

/** Distinct colors for classes 1..; class 0 (background) is never painted. */
export const CLASS_COLORS: ReadonlyArray<readonly [number, number, number]> = [
  [0, 0, 0],
  [230, 25, 75],
  [60, 180, 75],
  [255, 225, 25],
  [0, 130, 200],
  [245, 130, 48],
  [145, 30, 180],
  [70, 240, 240],
  [240, 50, 230],
  [210, 245, 60],
  [250, 190, 212],
  [0, 128, 128],
  [170, 110, 40],
  [128, 0, 0],
  [170, 255, 195],
];

export function classColor(k: number): readonly [number, number, number] {
  return CLASS_COLORS[k % CLASS_COLORS.length] ?? [255, 255, 255];
}

export interface RgbPicture {
  data: Uint8Array;
  width: number;
  height: number;
}

/** Values scaled to [0, 1] by the given range (default: their own min and max). */
function toUnit(values: ArrayLike<number>, range?: readonly [number, number]): Float32Array {
  let lo = range?.[0] ?? Number.POSITIVE_INFINITY;
  let hi = range?.[1] ?? Number.NEGATIVE_INFINITY;
  if (!range) {
    for (let i = 0; i < values.length; i++) {
      lo = Math.min(lo, values[i]);
      hi = Math.max(hi, values[i]);
    }
  }
  const span = hi - lo > 0 ? hi - lo : 1;
  return Float32Array.from(values as ArrayLike<number>, (v) => Math.max(0, Math.min(1, (v - lo) / span)));
}

/**
 * An (h, w) grayscale image with an optional label map blended over it (`alpha` on labelled pixels,
 * background untouched), enlarged `scale` times.
 */
export function overlayLabels(
  gray: ArrayLike<number>,
  labels: ArrayLike<number> | null,
  height: number,
  width: number,
  options: { alpha?: number; scale?: number; range?: readonly [number, number] } = {},
): RgbPicture {
  const { alpha = 0.5, scale = 1 } = options;
  if (gray.length !== height * width || (labels && labels.length !== height * width)) {
    throw new Error(`overlayLabels: image and labels must both have ${height}x${width} values`);
  }
  const g = toUnit(gray, options.range);
  const W = width * scale;
  const H = height * scale;
  const out = new Uint8Array(3 * W * H);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const i = Math.floor(y / scale) * width + Math.floor(x / scale);
      const v = 255 * g[i];
      const k = labels ? labels[i] : 0;
      const c = k > 0 ? classColor(k) : null;
      for (let ch = 0; ch < 3; ch++)
        out[3 * (y * W + x) + ch] = Math.round(c ? (1 - alpha) * v + alpha * c[ch] : v);
    }
  }
  return { data: out, width: W, height: H };
}

/** Pictures laid out in a grid (rows of `columns`), `gap` white pixels apart. */
export function tilePictures(pictures: readonly RgbPicture[], columns: number, gap = 4): RgbPicture {
  if (pictures.length === 0) throw new Error('tilePictures: no pictures');
  const cellW = Math.max(...pictures.map((p) => p.width));
  const cellH = Math.max(...pictures.map((p) => p.height));
  const rows = Math.ceil(pictures.length / columns);
  const W = columns * cellW + (columns + 1) * gap;
  const H = rows * cellH + (rows + 1) * gap;
  const out = new Uint8Array(3 * W * H).fill(255);
  pictures.forEach((p, n) => {
    const ox = gap + (n % columns) * (cellW + gap);
    const oy = gap + Math.floor(n / columns) * (cellH + gap);
    for (let y = 0; y < p.height; y++) {
      out.set(p.data.subarray(3 * y * p.width, 3 * (y + 1) * p.width), 3 * ((oy + y) * W + ox));
    }
  });
  return { data: out, width: W, height: H };
}

/** The axial (z), coronal (y) and sagittal (x) slices through (z, y, x) of a (D, H, W) volume. */
export function orthogonalSlices<T extends ArrayLike<number>>(
  volume: T,
  shape: readonly [number, number, number],
  at: readonly [number, number, number],
): Array<{ data: Float32Array; height: number; width: number }> {
  const [D, H, W] = shape;
  const [z, y, x] = at;
  if (volume.length !== D * H * W)
    throw new Error(`orthogonalSlices: volume has ${volume.length} values, not ${D}x${H}x${W}`);
  if (!(z >= 0 && z < D && y >= 0 && y < H && x >= 0 && x < W)) {
    throw new Error(`orthogonalSlices: slice point (${z}, ${y}, ${x}) is outside ${D}x${H}x${W}`);
  }
  const axial = new Float32Array(H * W);
  for (let i = 0; i < H * W; i++) axial[i] = volume[z * H * W + i];
  const coronal = new Float32Array(D * W);
  for (let d = 0; d < D; d++) for (let i = 0; i < W; i++) coronal[d * W + i] = volume[(d * H + y) * W + i];
  const sagittal = new Float32Array(D * H);
  for (let d = 0; d < D; d++) for (let i = 0; i < H; i++) sagittal[d * H + i] = volume[(d * H + i) * W + x];
  return [
    { data: axial, height: H, width: W },
    { data: coronal, height: D, width: W },
    { data: sagittal, height: D, width: H },
  ];
}

/** The voxel where the most labelled voxels cross: the argmax of the label counts per z, y and x plane. */
export function busiestSlices(
  labels: ArrayLike<number>,
  shape: readonly [number, number, number],
): [number, number, number] {
  const [D, H, W] = shape;
  const cz = new Float64Array(D);
  const cy = new Float64Array(H);
  const cx = new Float64Array(W);
  for (let d = 0; d < D; d++) {
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        if (labels[(d * H + y) * W + x] > 0) {
          cz[d]++;
          cy[y]++;
          cx[x]++;
        }
      }
    }
  }
  const arg = (a: Float64Array) =>
    a.some((v) => v > 0) ? a.indexOf(Math.max(...a)) : Math.floor(a.length / 2);
  return [arg(cz), arg(cy), arg(cx)];
}

/**
 * One row per label map given: axial, coronal and sagittal slices through `at` with that map blended
 * over the volume (a null map shows the volume alone).
 */
export function sliceOverlays(
  volume: ArrayLike<number>,
  labelMaps: ReadonlyArray<ArrayLike<number> | null>,
  shape: readonly [number, number, number],
  at: readonly [number, number, number],
  options: { alpha?: number; scale?: number } = {},
): RgbPicture[] {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < volume.length; i++) {
    lo = Math.min(lo, volume[i]);
    hi = Math.max(hi, volume[i]);
  }
  const planes = orthogonalSlices(volume, shape, at);
  const pictures: RgbPicture[] = [];
  for (const labels of labelMaps) {
    const labelPlanes = labels ? orthogonalSlices(labels, shape, at) : null;
    planes.forEach((p, i) => {
      pictures.push(
        overlayLabels(p.data, labelPlanes ? labelPlanes[i].data : null, p.height, p.width, {
          ...options,
          range: [lo, hi],
        }),
      );
    });
  }
  return pictures;
}

export async function writePicture(path: string, picture: RgbPicture): Promise<void> {
  await writePngBytes(path, picture.data, picture.width, picture.height);
}
