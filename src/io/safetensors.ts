/**
 * safetensors read/write (https://github.com/huggingface/safetensors): an 8-byte little-endian header
 * length, a JSON header {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {str: str}},
 * then the byte buffer. The whole header is validated (dtypes, shapes, spans inside the data, no
 * overlaps, no duplicate keys) before any tensor memory is allocated, so a malformed or lying file
 * fails fast with a SafetensorsError naming the file and the problem, and a file's tensors never
 * take more than 4x its size. Files are read tensor by tensor, straight into each tensor's buffer.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import type { DType, Storage } from '../tensor/dtype.js';
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

function isDType(v: unknown): v is SafetensorsDType {
  return typeof v === 'string' && Object.hasOwn(BYTES, v);
}

/** The header may not exceed 100 MB (the reference implementation's limit). */
const MAX_HEADER = 100_000_000;
/** No framework writes more dims than this; a longer shape is a corrupt header. */
const MAX_DIMS = 64;
/** A header nests 3 levels (object, entry, shape); far deeper nesting is rejected before parsing. */
const MAX_NESTING = 16;

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

/** A short rendering of an untrusted JSON value for an error message (never deep, never long). */
function preview(v: unknown): string {
  if (Array.isArray(v)) {
    const items = v
      .slice(0, 8)
      .map((x) => (Array.isArray(x) ? '[...]' : x !== null && typeof x === 'object' ? '{...}' : preview(x)));
    return `[${items.join(', ')}${v.length > 8 ? `, ... (${v.length} items)` : ''}]`;
  }
  if (v !== null && typeof v === 'object') return '{...}';
  const s = v === undefined ? 'nothing' : JSON.stringify(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function quoteName(name: string): string {
  return `'${name.length > 80 ? `${name.slice(0, 77)}...` : name}'`;
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

/** float32 -> float16 bits, rounding to nearest even (subnormals included); NaN stays a quiet NaN. */
function f32ToF16(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
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
  // a carry out of the mantissa correctly bumps the exponent (up to infinity)
  let half = sign | (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return half;
}

/** float32 -> bfloat16 bits, rounding to nearest even; NaN stays a quiet NaN. */
function f32ToBf16(v: number): number {
  f32[0] = v;
  const x = u32[0];
  if (Number.isNaN(v)) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Converts a tensor's bytes (`buf` is owned and starts at offset 0, so typed views are aligned). */
function decode(dtype: SafetensorsDType, buf: Uint8Array, count: number): Storage {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  switch (dtype) {
    case 'F32':
      return new Float32Array(buf.buffer, buf.byteOffset, count);
    case 'F64':
      return Float32Array.from(new Float64Array(buf.buffer, buf.byteOffset, count));
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
      return new Int32Array(buf.buffer, buf.byteOffset, count);
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
      return Int32Array.from(new Int8Array(buf.buffer, buf.byteOffset, count));
    case 'U8':
      return Int32Array.from(buf);
    case 'BOOL':
      // any non-zero byte is true; glimpse's masks hold exactly 0 or 1
      for (let i = 0; i < count; i++) buf[i] = buf[i] ? 1 : 0;
      return buf;
  }
}

/** One validated header entry: where its bytes are (relative to the data start) and what they hold. */
interface PlannedTensor {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  begin: number;
  end: number;
  count: number;
}

function isJsonSpace(ch: number): boolean {
  return ch === 0x20 || ch === 0x09 || ch === 0x0a || ch === 0x0d;
}

/** Whether brackets nest deeper than `limit` (strings skipped); tolerates invalid JSON. */
function nestsDeeperThan(text: string, limit: number): boolean {
  const n = text.length;
  let depth = 0;
  for (let i = 0; i < n; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x22 /* " */) {
      i++;
      while (i < n && text.charCodeAt(i) !== 0x22) i += text.charCodeAt(i) === 0x5c /* \ */ ? 2 : 1;
    } else if (ch === 0x7b /* { */ || ch === 0x5b /* [ */) {
      if (++depth > limit) return true;
    } else if (ch === 0x7d /* } */ || ch === 0x5d /* ] */) depth--;
  }
  return false;
}

/**
 * The first key that appears twice in one JSON object, or null. `text` must already be valid JSON
 * (JSON.parse silently keeps the last duplicate, which would let two readers see different tensors).
 */
function findDuplicateKey(text: string): string | null {
  const stack: Array<Set<string> | null> = [];
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x7b /* { */) stack.push(new Set());
    else if (ch === 0x5b /* [ */) stack.push(null);
    else if (ch === 0x7d /* } */ || ch === 0x5d /* ] */) stack.pop();
    else if (ch === 0x22 /* " */) {
      let j = i + 1;
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c /* \ */ ? 2 : 1;
      let k = j + 1;
      while (k < n && isJsonSpace(text.charCodeAt(k))) k++;
      const keys = stack[stack.length - 1];
      if (text[k] === ':' && keys) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (keys.has(key)) return key;
        keys.add(key);
      }
      i = j;
    }
  }
  return null;
}

/** Validates the header against a data section of `dataLen` bytes; allocates no tensor memory. */
function planHeader(
  headerBytes: Uint8Array,
  dataLen: number,
  source: string,
): { plan: PlannedTensor[]; metadata: Record<string, string> } {
  let text: string;
  let header: unknown;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    fail(source, 'header is not valid UTF-8');
  }
  // Building a million nested arrays only to reject them would take seconds.
  if (nestsDeeperThan(text, MAX_NESTING)) fail(source, `header nests deeper than ${MAX_NESTING} levels`);
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail(source, `header is not valid JSON (${(e as Error).message.slice(0, 120)})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    fail(source, `header must be a JSON object, got ${preview(header)}`);
  }
  const duplicate = findDuplicateKey(text);
  if (duplicate !== null) fail(source, `header repeats the key ${quoteName(duplicate)}`);
  const plan: PlannedTensor[] = [];
  const metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
        fail(source, `__metadata__ must be an object of strings, got ${preview(raw)}`);
      }
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string')
          fail(source, `__metadata__ ${quoteName(k)} must be a string, got ${preview(v)}`);
        Object.defineProperty(metadata, k, {
          value: v,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      continue;
    }
    const what = `tensor ${quoteName(name)}`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      fail(source, `${what} must be an object {dtype, shape, data_offsets}, got ${preview(raw)}`);
    }
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = info.dtype;
    if (!isDType(dtype)) {
      fail(
        source,
        `${what} has unsupported dtype ${preview(dtype)} (supported: ${Object.keys(BYTES).join(', ')})`,
      );
    }
    const shape = info.shape;
    if (
      !Array.isArray(shape) ||
      shape.length > MAX_DIMS ||
      shape.some((d) => !Number.isSafeInteger(d) || (d as number) < 0)
    ) {
      fail(
        source,
        `${what} has an invalid shape ${preview(shape)} (expected at most ${MAX_DIMS} integers >= 0)`,
      );
    }
    const offsets = info.data_offsets;
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      offsets.some((d) => !Number.isSafeInteger(d) || (d as number) < 0)
    ) {
      fail(
        source,
        `${what} has invalid data_offsets ${preview(offsets)} (expected [begin, end], integers >= 0)`,
      );
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) fail(source, `${what} has data_offsets [${begin}, ${end}] with end before begin`);
    if (end > dataLen) {
      fail(
        source,
        `${what} data [${begin}, ${end}] runs past the data section (${dataLen} bytes); truncated?`,
      );
    }
    // Element count in float64: an overflow shows up as a non-safe integer, never as a wrong match.
    let count = 1;
    for (const d of shape as number[]) count *= d;
    const needed = count * BYTES[dtype];
    if (!Number.isSafeInteger(needed) || needed !== end - begin) {
      fail(
        source,
        `${what}: shape ${preview(shape)} of ${dtype} needs ${needed} bytes but data_offsets span ${end - begin}`,
      );
    }
    plan.push({ name, dtype, shape: shape as number[], begin, end, count });
  }
  // Empty tensors own no bytes, so only non-empty spans can overlap.
  const spans = plan.filter((t) => t.end > t.begin).sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i].begin < spans[i - 1].end) {
      const [a, b] = [spans[i - 1], spans[i]];
      fail(
        source,
        `tensors ${quoteName(a.name)} [${a.begin}, ${a.end}] and ${quoteName(b.name)} [${b.begin}, ${b.end}] overlap`,
      );
    }
  }
  return { plan, metadata };
}

/** The header length field, checked against the file size before anything is allocated for it. */
function headerLength(prefix: Uint8Array, fileSize: number, source: string): number {
  if (fileSize < 8) fail(source, `file is ${fileSize} bytes, shorter than the 8-byte header length`);
  const len = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (len > BigInt(MAX_HEADER))
    fail(source, `header length ${len} exceeds the 100 MB limit; not a safetensors file?`);
  const n = Number(len);
  if (8 + n > fileSize) {
    fail(source, `header length ${n} runs past the end of the file (${fileSize} bytes); truncated?`);
  }
  return n;
}

function assemble(
  plan: PlannedTensor[],
  metadata: Record<string, string>,
  bytesOf: (t: PlannedTensor) => Uint8Array,
): SafetensorsFile {
  const tensors = new Map<string, Tensor>();
  const dtypes = new Map<string, SafetensorsDType>();
  for (const t of plan) {
    tensors.set(t.name, new Tensor(decode(t.dtype, bytesOf(t), t.count), t.shape));
    dtypes.set(t.name, t.dtype);
  }
  return { tensors, dtypes, metadata };
}

/** Parses a safetensors image held in memory. `source` names it in errors. */
export function parseSafetensors(bytes: Uint8Array, source = '<buffer>'): SafetensorsFile {
  const headerLen = headerLength(bytes, bytes.length, source);
  const dataStart = 8 + headerLen;
  const { plan, metadata } = planHeader(bytes.subarray(8, dataStart), bytes.length - dataStart, source);
  return assemble(plan, metadata, (t) => {
    // a copy, not bytes.slice: Buffer's slice is a view, and the data may sit at any alignment
    const buf = new Uint8Array(t.end - t.begin);
    buf.set(bytes.subarray(dataStart + t.begin, dataStart + t.end));
    return buf;
  });
}

/** Fills `buf` from `fd` at `position`; a short read means the file changed under us. */
function readExactly(fd: number, buf: Uint8Array, position: number, source: string): void {
  let off = 0;
  while (off < buf.length) {
    let n: number;
    try {
      n = readSync(fd, buf, off, buf.length - off, position + off);
    } catch (e) {
      fail(source, `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    if (n === 0) fail(source, `file ended at ${position + off} bytes while reading; was it modified?`);
    off += n;
  }
}

/** Reads a .safetensors file; errors name the file and the problem. */
export function readSafetensors(path: string): SafetensorsFile {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    fail(path, `cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) fail(path, 'not a regular file');
    const size = stat.size;
    const prefix = new Uint8Array(8);
    if (size >= 8) readExactly(fd, prefix, 0, path);
    const headerLen = headerLength(prefix, size, path);
    const headerBytes = new Uint8Array(headerLen);
    readExactly(fd, headerBytes, 8, path);
    const dataStart = 8 + headerLen;
    const { plan, metadata } = planHeader(headerBytes, size - dataStart, path);
    return assemble(plan, metadata, (t) => {
      const buf = new Uint8Array(t.end - t.begin);
      readExactly(fd, buf, dataStart + t.begin, path);
      return buf;
    });
  } finally {
    closeSync(fd);
  }
}

const INT_RANGE: Partial<Record<SafetensorsDType, [number, number]>> = {
  I64: [-(2 ** 53), 2 ** 53],
  I32: [-(2 ** 31), 2 ** 31 - 1],
  I16: [-(2 ** 15), 2 ** 15 - 1],
  U16: [0, 2 ** 16 - 1],
  I8: [-128, 127],
  U8: [0, 255],
};

function encode(t: Tensor, dtype: SafetensorsDType, what: string, source: string): Uint8Array {
  const n = t.size;
  const range = INT_RANGE[dtype];
  if (range) {
    for (let i = 0; i < n; i++) {
      const v = t.data[i];
      if (!Number.isInteger(v) || v < range[0] || v > range[1]) {
        fail(
          source,
          `${what}: value ${v} at ${i} does not fit ${dtype} (integers in [${range[0]}, ${range[1]}])`,
        );
      }
    }
  }
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
      case 'BF16':
        dv.setUint16(2 * i, f32ToBf16(v), true);
        break;
      case 'I64':
        dv.setBigInt64(8 * i, BigInt(v), true);
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

export interface SafetensorsWriteOptions {
  /** String key/value pairs stored as `__metadata__`. */
  metadata?: Record<string, string>;
  /** Per-tensor file dtype (e.g. F16 or BF16 for some weights). */
  dtypes?: Record<string, SafetensorsDType>;
  /** File dtype for every float32 tensor without a per-tensor entry. */
  dtype?: SafetensorsDType;
}

function serialize(
  tensors: Map<string, Tensor> | Record<string, Tensor>,
  options: SafetensorsWriteOptions,
  source: string,
): Uint8Array {
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const names = new Set(entries.map(([name]) => name));
  // A null-prototype object keeps a tensor named __proto__ an ordinary key.
  const header: Record<string, unknown> = Object.create(null);
  if (options.metadata) {
    const meta: Record<string, string> = Object.create(null);
    for (const [k, v] of Object.entries(options.metadata)) {
      if (typeof v !== 'string') fail(source, `metadata ${quoteName(k)} must be a string, got ${preview(v)}`);
      meta[k] = v;
    }
    header.__metadata__ = meta;
  }
  for (const [name, dt] of Object.entries(options.dtypes ?? {})) {
    if (!names.has(name)) fail(source, `dtypes names ${quoteName(name)}, which is not among the tensors`);
    if (!isDType(dt)) fail(source, `dtypes ${quoteName(name)}: unsupported dtype ${preview(dt)}`);
  }
  if (options.dtype !== undefined && !isDType(options.dtype)) {
    fail(source, `unsupported dtype ${preview(options.dtype)}`);
  }
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of entries) {
    const what = `tensor ${quoteName(name)}`;
    if (name === '__metadata__')
      fail(source, `a tensor cannot be named __metadata__ (reserved by the format)`);
    if (!(t instanceof Tensor)) fail(source, `${what} is not a Tensor`);
    const dtype =
      options.dtypes?.[name] ??
      (t.dtype === 'float32' && options.dtype ? options.dtype : defaultDType(t.dtype));
    const blob = encode(t, dtype, what, source);
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

/** Serializes tensors (in insertion order) to safetensors bytes; `dtypes` overrides per tensor (F16/BF16...). */
export function serializeSafetensors(
  tensors: Map<string, Tensor> | Record<string, Tensor>,
  options: SafetensorsWriteOptions = {},
): Uint8Array {
  return serialize(tensors, options, '<buffer>');
}

/**
 * Writes atomically: everything is serialized (and checked) first, then written to a temp file next
 * to the target, flushed, and renamed over it, so neither a bad tensor nor a crash leaves half a file.
 */
export function writeSafetensors(
  path: string,
  tensors: Map<string, Tensor> | Record<string, Tensor>,
  options: SafetensorsWriteOptions = {},
): void {
  writeFileAtomic(path, serialize(tensors, options, path));
}

export function writeFileAtomic(path: string, bytes: Uint8Array | string): void {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const data = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  let fd: number | null = null;
  try {
    fd = openSync(tmp, 'wx');
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== null) closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
}
