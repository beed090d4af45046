/**
 * Volumes in and label maps out: NumPy .npy (C order), NIfTI-1 (.nii, .nii.gz; the format of
 * medical volumes, x fastest, so a (z, y, x) row-major array) and safetensors (one tensor, or the
 * one named 'volume' / 'image'). Label maps go back as .npy uint8 and, for a NIfTI input, as a NIfTI
 * with the input's header (geometry kept, datatype uint8, no intensity scaling).
 */
import { readFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import { writeFileAtomic } from '../io/safetensors.js';
import { readSafetensors } from '../io/safetensors.js';

export interface Volume {
  /** Row-major values; shape [D, H, W] or [C, D, H, W]. */
  data: Float32Array;
  shape: number[];
  /** Voxel size along (D, H, W) when the file records it. */
  spacing?: [number, number, number];
  /** The NIfTI header bytes (first 348) when read from NIfTI, to write label maps in the same geometry. */
  niftiHeader?: Uint8Array;
}

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];

type Reader = (view: DataView, offset: number, little: boolean) => number;
const NPY_TYPES: Record<string, { size: number; read: Reader }> = {
  f4: { size: 4, read: (v, o, l) => v.getFloat32(o, l) },
  f8: { size: 8, read: (v, o, l) => v.getFloat64(o, l) },
  u1: { size: 1, read: (v, o) => v.getUint8(o) },
  i1: { size: 1, read: (v, o) => v.getInt8(o) },
  b1: { size: 1, read: (v, o) => v.getUint8(o) },
  u2: { size: 2, read: (v, o, l) => v.getUint16(o, l) },
  i2: { size: 2, read: (v, o, l) => v.getInt16(o, l) },
  u4: { size: 4, read: (v, o, l) => v.getUint32(o, l) },
  i4: { size: 4, read: (v, o, l) => v.getInt32(o, l) },
};

/** Parses a .npy file (format 1-3, C order, numeric dtypes) into float32. */
export function parseNpy(bytes: Uint8Array, source: string): { data: Float32Array; shape: number[] } {
  if (bytes.length < 10 || NPY_MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new Error(`readVolume: ${source} is not a .npy file (no \\x93NUMPY magic)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6];
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr':\s*'([<>|=])([a-z])(\d+)'/.exec(header);
  const shapeMatch = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !shapeMatch)
    throw new Error(`readVolume: ${source} has an unreadable .npy header: ${header.trim()}`);
  if (/'fortran_order':\s*True/.test(header)) {
    throw new Error(`readVolume: ${source} is in Fortran order; save it with np.ascontiguousarray(a)`);
  }
  const kind = `${descr[2]}${descr[3]}`;
  const type = NPY_TYPES[kind];
  if (!type)
    throw new Error(`readVolume: ${source} has dtype ${descr[0]}; use float32, float64 or an integer type`);
  const shape = shapeMatch[1]
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = start + headerLen;
  if (bytes.length - offset < count * type.size) {
    throw new Error(
      `readVolume: ${source} holds ${bytes.length - offset} data bytes, shape (${shape}) needs ${count * type.size}`,
    );
  }
  const little = descr[1] !== '>';
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) data[i] = type.read(view, offset + i * type.size, little);
  return { data, shape };
}

/** A .npy file (format 1.0) of uint8 values with the given C-order shape. */
export function encodeNpyUint8(data: Uint8Array, shape: readonly number[]): Uint8Array {
  const dict = `{'descr': '|u1', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  // Header padded with spaces to a multiple of 64 bytes, ending in a newline.
  const total = Math.ceil((10 + dict.length + 1) / 64) * 64;
  const header = `${dict}${' '.repeat(total - 10 - dict.length - 1)}\n`;
  const out = new Uint8Array(total + data.length);
  out.set(NPY_MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(data, total);
  return out;
}

const NIFTI_TYPES: Record<number, { size: number; read: Reader }> = {
  2: NPY_TYPES.u1,
  4: NPY_TYPES.i2,
  8: NPY_TYPES.i4,
  16: NPY_TYPES.f4,
  64: NPY_TYPES.f8,
  256: NPY_TYPES.i1,
  512: NPY_TYPES.u2,
  768: NPY_TYPES.u4,
};

/** Parses a NIfTI-1 single file (.nii, gzipped or not): a 3D volume, or 4D with channels last. */
export function parseNifti(raw: Uint8Array, source: string): Volume {
  const bytes = raw[0] === 0x1f && raw[1] === 0x8b ? new Uint8Array(gunzipSync(raw)) : raw;
  if (bytes.length < 352) throw new Error(`readVolume: ${source} is too short for a NIfTI-1 header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const little = view.getInt32(0, true) === 348;
  if (!little && view.getInt32(0, false) !== 348)
    throw new Error(`readVolume: ${source} is not NIfTI-1 (sizeof_hdr is not 348)`);
  const magic = new TextDecoder().decode(bytes.subarray(344, 347));
  if (magic !== 'n+1')
    throw new Error(
      `readVolume: ${source} is not a single-file NIfTI-1 (magic '${magic}'); use .nii or .nii.gz`,
    );
  const ndim = view.getInt16(40, little);
  const dims = Array.from({ length: ndim }, (_, i) => view.getInt16(42 + 2 * i, little));
  if (ndim < 3 || ndim > 4 || (ndim === 4 && dims[3] < 1)) {
    throw new Error(
      `readVolume: ${source} has ${ndim} dims [${dims}]; expected a 3D volume (or 4D with channels)`,
    );
  }
  const datatype = view.getInt16(70, little);
  const type = NIFTI_TYPES[datatype];
  if (!type)
    throw new Error(
      `readVolume: ${source} has NIfTI datatype ${datatype}; use uint8/int16/int32/float32/float64`,
    );
  const pixdim = [1, 2, 3].map((i) => view.getFloat32(76 + 4 * i, little));
  const voxOffset = Math.floor(view.getFloat32(108, little));
  const slope = view.getFloat32(112, little);
  const inter = view.getFloat32(116, little);
  const [nx, ny, nz] = dims;
  const channels = ndim === 4 ? dims[3] : 1;
  const count = nx * ny * nz * channels;
  if (bytes.length < voxOffset + count * type.size) {
    throw new Error(`readVolume: ${source} ends before its ${nx}x${ny}x${nz}x${channels} voxels`);
  }
  const data = new Float32Array(count);
  const scale = slope !== 0 && Number.isFinite(slope);
  for (let i = 0; i < count; i++) {
    const v = type.read(view, voxOffset + i * type.size, little);
    data[i] = scale ? v * slope + inter : v;
  }
  // x is fastest in NIfTI: each channel is a row-major (z, y, x) array, channels outermost.
  return {
    data,
    shape: channels > 1 ? [channels, nz, ny, nx] : [nz, ny, nx],
    spacing: [pixdim[2], pixdim[1], pixdim[0]],
    niftiHeader: bytes.slice(0, 348),
  };
}

/** A NIfTI-1 (.nii.gz) of a uint8 (z, y, x) label map in the geometry of `header`. */
export function encodeNiftiLabels(
  labels: Uint8Array,
  shape: readonly [number, number, number],
  header: Uint8Array,
): Uint8Array {
  const out = new Uint8Array(352 + labels.length);
  out.set(header.subarray(0, 348), 0);
  const view = new DataView(out.buffer);
  const little = view.getInt32(0, true) === 348;
  const [nz, ny, nx] = shape;
  view.setInt16(40, 3, little);
  for (const [i, d] of [nx, ny, nz, 1, 1, 1, 1].entries()) view.setInt16(42 + 2 * i, d, little);
  view.setInt16(70, 2, little); // uint8
  view.setInt16(72, 8, little);
  view.setFloat32(108, 352, little);
  view.setFloat32(112, 1, little);
  view.setFloat32(116, 0, little);
  out.set(labels, 352);
  return new Uint8Array(gzipSync(out));
}

/** Reads a volume from .npy, .nii(.gz) or .safetensors. */
export function readVolume(path: string): Volume {
  const lower = path.toLowerCase();
  if (lower.endsWith('.safetensors')) {
    const { tensors } = readSafetensors(path);
    const t =
      tensors.get('volume') ??
      tensors.get('image') ??
      (tensors.size === 1 ? [...tensors.values()][0] : undefined);
    if (!t) {
      throw new Error(
        `readVolume: ${path} holds ${tensors.size} tensors; name the volume 'volume' or keep only one`,
      );
    }
    return { data: Float32Array.from(t.data as ArrayLike<number>, Number), shape: [...t.shape] };
  }
  const bytes = new Uint8Array(readFileSync(path));
  if (lower.endsWith('.npy')) return parseNpy(bytes, path);
  if (lower.endsWith('.nii') || lower.endsWith('.nii.gz')) return parseNifti(bytes, path);
  throw new Error(`readVolume: ${path}: unknown volume format; use .npy, .nii, .nii.gz or .safetensors`);
}

export function writeNpyUint8(path: string, data: Uint8Array, shape: readonly number[]): void {
  writeFileAtomic(path, encodeNpyUint8(data, shape));
}

export function writeNiftiLabels(
  path: string,
  labels: Uint8Array,
  shape: readonly [number, number, number],
  header: Uint8Array,
): void {
  writeFileAtomic(path, encodeNiftiLabels(labels, shape, header));
}
