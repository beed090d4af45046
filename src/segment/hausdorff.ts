/**
 * Hausdorff distances between binary masks in 2D and 3D, as MONAI's compute_hausdorff_distance:
 * each mask's edge is the mask minus its erosion (cross-shaped structuring element, outside the
 * image counts as background, as scipy's binary_erosion); the distance of every edge pixel of one
 * mask to the nearest edge pixel of the other comes from an exact Euclidean distance transform
 * (Felzenszwalb & Huttenlocher, separable, with voxel spacing); the directed distance is the
 * `percentile` of those (numpy's linear interpolation), the result the larger of both directions.
 */

function checkMask(mask: ArrayLike<number>, shape: readonly number[], what: string, op: string): number {
  if (shape.length < 1 || shape.length > 3 || shape.some((s) => !Number.isInteger(s) || s < 1)) {
    throw new Error(`${op}: shape must be 1 to 3 positive sizes, got [${shape}]`);
  }
  const size = shape.reduce((a, b) => a * b, 1);
  if (mask.length !== size)
    throw new Error(`${op}: ${what} has ${mask.length} values but shape [${shape}] has ${size}`);
  return size;
}

function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) strides[i] = strides[i + 1] * shape[i + 1];
  return strides;
}

/**
 * Squared distances along one line (in place): d[i] = min_j ((i - j) s)^2 + f[j], the lower envelope
 * of parabolas rooted at the finite entries.
 */
function envelope1d(
  f: Float64Array,
  n: number,
  s: number,
  v: Int32Array,
  z: Float64Array,
  out: Float64Array,
): void {
  let k = -1;
  for (let q = 0; q < n; q++) {
    if (f[q] === Number.POSITIVE_INFINITY) continue;
    const fq = f[q] + (q * s) ** 2;
    while (k >= 0) {
      const p = v[k];
      const boundary = (fq - (f[p] + (p * s) ** 2)) / (2 * s * (q - p));
      if (boundary <= z[k]) k--;
      else {
        k++;
        v[k] = q;
        z[k] = boundary;
        break;
      }
    }
    if (k < 0) {
      k = 0;
      v[0] = q;
      z[0] = Number.NEGATIVE_INFINITY;
    }
  }
  if (k < 0) {
    out.fill(Number.POSITIVE_INFINITY, 0, n);
    return;
  }
  let j = 0;
  for (let q = 0; q < n; q++) {
    const x = q * s;
    while (j < k && z[j + 1] < x) j++;
    out[q] = (q - v[j]) ** 2 * s * s + f[v[j]];
  }
}

/**
 * Euclidean distance from every pixel to the nearest nonzero pixel of `seeds` (0 on the seeds,
 * Infinity everywhere when there are none), with `spacing` per axis (default 1).
 */
export function distanceToNearest(
  seeds: ArrayLike<number>,
  shape: readonly number[],
  spacing: readonly number[] = shape.map(() => 1),
): Float64Array {
  const size = checkMask(seeds, shape, 'seeds', 'distanceToNearest');
  if (spacing.length !== shape.length || spacing.some((s) => !(s > 0))) {
    throw new Error(`distanceToNearest: spacing must be ${shape.length} positive numbers, got [${spacing}]`);
  }
  const d = new Float64Array(size);
  for (let i = 0; i < size; i++) d[i] = seeds[i] ? 0 : Number.POSITIVE_INFINITY;
  const strides = stridesOf(shape);
  const longest = Math.max(...shape);
  const line = new Float64Array(longest);
  const result = new Float64Array(longest);
  const v = new Int32Array(longest);
  const z = new Float64Array(longest + 1);
  for (let axis = 0; axis < shape.length; axis++) {
    const n = shape[axis];
    const stride = strides[axis];
    for (let start = 0; start < size; start++) {
      // Lines along `axis` start where that axis' coordinate is 0.
      if (Math.floor(start / stride) % n !== 0) continue;
      for (let i = 0; i < n; i++) line[i] = d[start + i * stride];
      envelope1d(line, n, spacing[axis], v, z, result);
      for (let i = 0; i < n; i++) d[start + i * stride] = result[i];
    }
  }
  for (let i = 0; i < size; i++) d[i] = Math.sqrt(d[i]);
  return d;
}

/** The mask minus its erosion by the cross-shaped element, pixels outside the image counting as background. */
export function maskEdges(mask: ArrayLike<number>, shape: readonly number[]): Uint8Array {
  const size = checkMask(mask, shape, 'mask', 'maskEdges');
  const strides = stridesOf(shape);
  const edges = new Uint8Array(size);
  for (let i = 0; i < size; i++) {
    if (!mask[i]) continue;
    let edge = false;
    for (let a = 0; a < shape.length && !edge; a++) {
      const c = Math.floor(i / strides[a]) % shape[a];
      if (c === 0 || c === shape[a] - 1 || !mask[i - strides[a]] || !mask[i + strides[a]]) edge = true;
    }
    if (edge) edges[i] = 1;
  }
  return edges;
}

/** numpy.percentile with linear interpolation. */
export function percentile(values: readonly number[] | Float64Array, q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  const pos = (q / 100) * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  if (sorted[lo] === sorted[hi]) return sorted[lo];
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export interface HausdorffOptions {
  /** Percentile of the edge distances (default 100, the classical Hausdorff distance; 95 for HD95). */
  percentile?: number;
  /** Physical size of a pixel/voxel per axis (default 1). */
  spacing?: readonly number[];
  /** Only prediction → target (default false: the larger of both directions). */
  directed?: boolean;
}

/**
 * Hausdorff distance between binary masks `pred` and `target` of spatial `shape` (2D or 3D):
 * NaN when both are empty, Infinity when only one is.
 */
export function hausdorffDistance(
  pred: ArrayLike<number>,
  target: ArrayLike<number>,
  shape: readonly number[],
  options: HausdorffOptions = {},
): number {
  const op = 'hausdorffDistance';
  checkMask(pred, shape, 'pred', op);
  checkMask(target, shape, 'target', op);
  const q = options.percentile ?? 100;
  if (!(q >= 0 && q <= 100)) throw new Error(`${op}: percentile must be in [0, 100], got ${q}`);
  const predEdges = maskEdges(pred, shape);
  const targetEdges = maskEdges(target, shape);
  const predEmpty = !predEdges.includes(1);
  const targetEmpty = !targetEdges.includes(1);
  if (predEmpty && targetEmpty) return Number.NaN;
  if (predEmpty || targetEmpty) return Number.POSITIVE_INFINITY;
  const directed = (from: Uint8Array, to: Uint8Array): number => {
    const dist = distanceToNearest(to, shape, options.spacing);
    const values: number[] = [];
    for (let i = 0; i < from.length; i++) if (from[i]) values.push(dist[i]);
    return percentile(values, q);
  };
  const forward = directed(predEdges, targetEdges);
  return options.directed ? forward : Math.max(forward, directed(targetEdges, predEdges));
}

/** HD95: the 95th-percentile Hausdorff distance. */
export function hd95(
  pred: ArrayLike<number>,
  target: ArrayLike<number>,
  shape: readonly number[],
  options: Omit<HausdorffOptions, 'percentile'> = {},
): number {
  return hausdorffDistance(pred, target, shape, { ...options, percentile: 95 });
}
