/**
 * safetensors read/write (https://github.com/huggingface/safetensors): an 8-byte little-endian header
 * length, a JSON header {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {str: str}},
 * then the byte buffer. Every field is validated before any allocation that depends on it, so a
 * malformed or lying file fails with an error naming the file and the problem.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import type { DType, Storage } from '../tensor/dtype.js';
import { sizeOf } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';

export type SafetensorsDType =
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'F64'
  | 'I64'
  | 'I32'
  | 'U8'
  | 'BOOL'
  | 'I8'
  | 'I16'
  | 'U16';

const BYTES: Record<SafetensorsDType, number> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  F64: 8,
  I64: 8,
  I32: 4,
  U8: 1,
  BOOL: 1,
  I8: 1,
  I16: 2,
  U16: 2,
};

/** The header may not exceed 100 MB (the reference implementation's limit). */
const MAX_HEADER = 100_000_000;

export interface SafetensorsEntry {
  dtype: SafetensorsDType;
  shape: number[];
  /** The tensor converted to glimpse's dtypes: floats to float32, I64 to int64, I32 to int32, U8/BOOL/... */
  tensor: Tensor;
}

export interface SafetensorsFile {
  tensors: Map<string, Tensor>;
  /** The dtype each tensor had in the file. */
  dtypes: Map<string, SafetensorsDType>;
  metadata: Record<string, string>;
}

export class SafetensorsError extends Error {}

function fail(source: string, problem: string): never {
  throw new SafetensorsError(`safetensors ${source}: ${problem}`);
}

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function f32ToF16(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = sign | (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  e = 0;
  return half;
}

function decode(dtype: SafetensorsDType, bytes: Uint8Array, count: number): Storage {
  // Copy to an aligned buffer first: the data offset inside the file need not be aligned.
  const buf = new Uint8Array(bytes.length);
  buf.set(bytes);
  const dv = new DataView(buf.buffer);
  switch (dtype) {
    case 'F32':
      return new Float32Array(buf.buffer, 0, count);
    case 'F64':
      return Float32Array.from(new Float64Array(buf.buffer, 0, count));
    case 'F16': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = f16ToF32(dv.getUint16(2 * i, true));
      return out;
    }
    case 'BF16': {
      const out = new Float32Array(count);
      const o32 = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) o32[i] = dv.getUint16(2 * i, true) << 16;
      return out;
    }
    case 'I64': {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = Number(dv.getBigInt64(8 * i, true));
      return out;
    }
    case 'I32':
      return new Int32Array(buf.buffer, 0, count);
    case 'I16': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = dv.getInt16(2 * i, true);
      return out;
    }
    case 'U16': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = dv.getUint16(2 * i, true);
      return out;
    }
    case 'I8':
      return Int32Array.from(new Int8Array(buf.buffer, 0, count));
    case 'U8':
      return Int32Array.from(buf.subarray(0, count));
    case 'BOOL':
      return buf.subarray(0, count);
  }
}

/** Parses a safetensors image held in memory. `source` names it in errors. */
export function parseSafetensors(bytes: Uint8Array, source = '<buffer>'): SafetensorsFile {
  if (bytes.length < 8) fail(source, `file is ${bytes.length} bytes, shorter than the 8-byte header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(dv.getBigUint64(0, true));
  if (headerLen > MAX_HEADER) fail(source, `header length ${headerLen} exceeds the 100 MB limit`);
  if (8 + headerLen > bytes.length) {
    fail(
      source,
      `header length ${headerLen} runs past the end of the file (${bytes.length} bytes); truncated?`,
    );
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen)));
  } catch (e) {
    fail(source, `header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    fail(source, 'header must be a JSON object');
  }
  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  const tensors = new Map<string, Tensor>();
  const dtypes = new Map<string, SafetensorsDType>();
  let metadata: Record<string, string> = {};
  const spans: Array<[number, number, string]> = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
        fail(source, '__metadata__ must be an object');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(source, `__metadata__.${k} must be a string`);
      }
      metadata = raw as Record<string, string>;
      continue;
    }
    if (typeof raw !== 'object' || raw === null) fail(source, `entry '${name}' must be an object`);
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = info.dtype as SafetensorsDType;
    if (typeof dtype !== 'string' || !(dtype in BYTES))
      fail(source, `tensor '${name}' has unsupported dtype ${JSON.stringify(info.dtype)}`);
    const shape = info.shape;
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      fail(source, `tensor '${name}' has an invalid shape ${JSON.stringify(shape)}`);
    }
    const offs = info.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || offs.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      fail(source, `tensor '${name}' has invalid data_offsets ${JSON.stringify(offs)}`);
    }
    const [begin, end] = offs as [number, number];
    if (end < begin)
      fail(source, `tensor '${name}' has data_offsets [${begin}, ${end}] with end before begin`);
    if (end > dataLen)
      fail(
        source,
        `tensor '${name}' data [${begin}, ${end}] runs past the data (${dataLen} bytes); truncated?`,
      );
    const count = sizeOf(shape as number[]);
    if (!Number.isSafeInteger(count) || count * BYTES[dtype] !== end - begin) {
      fail(
        source,
        `tensor '${name}': shape [${shape}] of ${dtype} needs ${count * BYTES[dtype]} bytes but the span is ${end - begin}`,
      );
    }
    spans.push([begin, end, name]);
    dtypes.set(name, dtype);
    tensors.set(
      name,
      new Tensor(decode(dtype, bytes.subarray(dataStart + begin, dataStart + end), count), shape as number[]),
    );
  }
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i][0] < spans[i - 1][1])
      fail(source, `tensors '${spans[i - 1][2]}' and '${spans[i][2]}' overlap`);
  }
  return { tensors, dtypes, metadata };
}

/** Reads a .safetensors file; errors name the file and the problem. */
export function readSafetensors(path: string): SafetensorsFile {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new SafetensorsError(
      `safetensors ${path}: cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  try {
    const size = fstatSync(fd).size;
    const bytes = new Uint8Array(size);
    let off = 0;
    while (off < size) {
      const n = readSync(fd, bytes, off, size - off, off);
      if (n === 0) break;
      off += n;
    }
    return parseSafetensors(bytes.subarray(0, off), path);
  } finally {
    closeSync(fd);
  }
}

function encode(t: Tensor, dtype: SafetensorsDType): Uint8Array {
  const n = t.size;
  const out = new Uint8Array(n * BYTES[dtype]);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < n; i++) {
    const v = Number(t.data[i]);
    switch (dtype) {
      case 'F32':
        dv.setFloat32(4 * i, v, true);
        break;
      case 'F64':
        dv.setFloat64(8 * i, v, true);
        break;
      case 'F16':
        dv.setUint16(2 * i, f32ToF16(v), true);
        break;
      case 'BF16': {
        f32[0] = v;
        const x = u32[0];
        // round to nearest even; keep NaN a NaN
        const r = Number.isNaN(v) ? (x >>> 16) | 0x40 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
        dv.setUint16(2 * i, r & 0xffff, true);
        break;
      }
      case 'I64':
        dv.setBigInt64(8 * i, BigInt(Math.trunc(v)), true);
        break;
      case 'I32':
        dv.setInt32(4 * i, v, true);
        break;
      case 'I16':
        dv.setInt16(2 * i, v, true);
        break;
      case 'U16':
        dv.setUint16(2 * i, v, true);
        break;
      case 'I8':
        dv.setInt8(i, v);
        break;
      case 'U8':
        dv.setUint8(i, v);
        break;
      case 'BOOL':
        dv.setUint8(i, v ? 1 : 0);
        break;
    }
  }
  return out;
}

function defaultDType(dtype: DType): SafetensorsDType {
  return dtype === 'float32' ? 'F32' : dtype === 'int32' ? 'I32' : dtype === 'int64' ? 'I64' : 'BOOL';
}

/** Serializes tensors (in insertion order) to safetensors bytes; `dtypes` overrides per tensor (F16/BF16...). */
export function serializeSafetensors(
  tensors: Map<string, Tensor> | Record<string, Tensor>,
  options: {
    metadata?: Record<string, string>;
    dtypes?: Record<string, SafetensorsDType>;
    dtype?: SafetensorsDType;
  } = {},
): Uint8Array {
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (options.metadata) header.__metadata__ = options.metadata;
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of entries) {
    const dtype =
      options.dtypes?.[name] ??
      (t.dtype === 'float32' && options.dtype ? options.dtype : defaultDType(t.dtype));
    const blob = encode(t, dtype);
    header[name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + blob.length] };
    blobs.push(blob);
    offset += blob.length;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data starts 8-byte aligned (as the reference writer does).
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let p = 8 + head.length;
  for (const b of blobs) {
    out.set(b, p);
    p += b.length;
  }
  return out;
}

/** Writes atomically: a temp file next to the target, then a rename, so a crash never leaves half a file. */
export function writeSafetensors(
  path: string,
  tensors: Map<string, Tensor> | Record<string, Tensor>,
  options: {
    metadata?: Record<string, string>;
    dtypes?: Record<string, SafetensorsDType>;
    dtype?: SafetensorsDType;
  } = {},
): void {
  const bytes = serializeSafetensors(tensors, options);
  writeFileAtomic(path, bytes);
}

export function writeFileAtomic(path: string, bytes: Uint8Array | string): void {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
