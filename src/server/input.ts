/**
 * What a request brings: an image (raw bytes, base64 JSON, or the id of a bundled sample; checked by
 * content and size before any model sees it) and parameters (JSON fields or query strings), each
 * refused with a one-line 400 message.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { BadRequest } from './errors.js';
import type { Sample } from './protocol.js';

/** The bundled samples: only ids from samples.json reach the file system, never a path from a request. */
export class SampleStore {
  readonly samples: Sample[];
  private readonly bytes = new Map<string, Uint8Array>();

  constructor(readonly dir: string) {
    this.samples = JSON.parse(readFileSync(join(dir, 'samples.json'), 'utf8')) as Sample[];
  }

  read(id: string): Uint8Array {
    const sample = this.samples.find((s) => s.id === id);
    if (!sample) {
      throw new BadRequest(
        `unknown sample '${String(id).slice(0, 40)}'; samples: ${this.samples.map((s) => s.id).join(', ')}`,
      );
    }
    let bytes = this.bytes.get(id);
    if (!bytes) {
      bytes = new Uint8Array(readFileSync(join(this.dir, sample.file)));
      this.bytes.set(id, bytes);
    }
    // Each job takes its own copy: the pool hands it to a worker thread.
    return bytes.slice();
  }
}

export interface ImageLimits {
  /** encoded size */
  maxBytes: number;
  /** decoded width x height */
  maxPixels: number;
}

const ACCEPTED = 'JPEG, PNG, WebP or GIF';

/** The image format from the file's first bytes (its signature), or null. */
export function sniffImageFormat(b: Uint8Array): 'jpeg' | 'png' | 'webp' | 'gif' | null {
  const ascii = (from: number, to: number) => String.fromCharCode(...b.subarray(from, to));
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && b[0] === 0x89 && ascii(1, 4) === 'PNG' && b[4] === 0x0d && b[5] === 0x0a) return 'png';
  if (b.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'webp';
  if (b.length >= 6 && (ascii(0, 6) === 'GIF87a' || ascii(0, 6) === 'GIF89a')) return 'gif';
  return null;
}

function megabytes(n: number): string {
  return `${(n / 2 ** 20).toFixed(1)} MiB`;
}

/** Throws a BadRequest unless the bytes are an image of an accepted type within the limits. */
export async function checkImage(bytes: Uint8Array, limits: ImageLimits): Promise<void> {
  if (bytes.length === 0) throw new BadRequest(`the image is empty; send a ${ACCEPTED} file`);
  if (bytes.length > limits.maxBytes) {
    throw new BadRequest(
      `the image is ${megabytes(bytes.length)}; the limit is ${megabytes(limits.maxBytes)}`,
    );
  }
  const format = sniffImageFormat(bytes);
  if (!format)
    throw new BadRequest(`the upload is not an image (checked by content); send a ${ACCEPTED} file`);
  let width = 0;
  let height = 0;
  try {
    const meta = await sharp(bytes).metadata();
    width = meta.width ?? 0;
    height = meta.height ?? 0;
  } catch (e) {
    throw new BadRequest(
      `the ${format.toUpperCase()} image cannot be read (${(e as Error).message.split('\n')[0]})`,
    );
  }
  if (!(width > 0 && height > 0)) throw new BadRequest(`the ${format.toUpperCase()} image has no pixels`);
  if (width * height > limits.maxPixels) {
    throw new BadRequest(
      `the image is ${width}x${height} pixels; the limit is ${(limits.maxPixels / 1e6).toFixed(0)} megapixels`,
    );
  }
}

/**
 * The image a JSON body names: `image: { sample: 'chelsea' }`, `image: { data: '<base64>' }` or
 * `image: 'data:image/png;base64,...'`.
 */
export function imageFromJson(body: Record<string, unknown>, samples: SampleStore): Uint8Array {
  const image = body.image;
  const base64 = (text: string) => {
    const clean = text.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean)) throw new BadRequest('image data is not base64');
    return new Uint8Array(Buffer.from(clean, 'base64'));
  };
  if (typeof image === 'string') {
    const m = /^data:[^;,]*;base64,(.*)$/s.exec(image);
    if (!m)
      throw new BadRequest('image must be a data URL (data:image/png;base64,...), { data }, or { sample }');
    return base64(m[1]);
  }
  if (image && typeof image === 'object') {
    const { sample, data } = image as { sample?: unknown; data?: unknown };
    if (typeof sample === 'string') return samples.read(sample);
    if (typeof data === 'string') return base64(data);
  }
  throw new BadRequest(
    'missing image: send { "image": { "sample": "chelsea" } }, { "image": { "data": "<base64>" } } or the raw image bytes',
  );
}

/** Typed access to request parameters that come as JSON values or query-string text. */
export class Params {
  constructor(private readonly values: Record<string, unknown>) {}

  private raw(name: string): unknown {
    const v = this.values[name];
    return v === '' ? undefined : v;
  }

  string(name: string): string | undefined {
    const v = this.raw(name);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw new BadRequest(`${name} must be a string, got ${JSON.stringify(v)}`);
    return v;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const v = this.string(name) ?? fallback;
    if (!allowed.includes(v as T)) {
      throw new BadRequest(`${name} '${v.slice(0, 40)}' is not one of ${allowed.join(', ')}`);
    }
    return v as T;
  }

  number(name: string, check: (v: number) => boolean, hint: string, fallback: number): number;
  number(name: string, check: (v: number) => boolean, hint: string): number | undefined;
  number(name: string, check: (v: number) => boolean, hint: string, fallback?: number): number | undefined {
    const v = this.raw(name);
    if (v === undefined || v === null) return fallback;
    const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : Number.NaN;
    if (!Number.isFinite(n) || !check(n)) {
      throw new BadRequest(`${name} ${JSON.stringify(v).slice(0, 40)} is invalid; ${hint}`);
    }
    return n;
  }

  integer(name: string, min: number, max: number, fallback: number): number;
  integer(name: string, min: number, max: number): number | undefined;
  integer(name: string, min: number, max: number, fallback?: number): number | undefined {
    const ok = (v: number) => Number.isInteger(v) && v >= min && v <= max;
    return this.number(name, ok, `use an integer from ${min} to ${max}`, fallback as number);
  }

  boolean(name: string, fallback: boolean): boolean {
    const v = this.raw(name);
    if (v === undefined || v === null) return fallback;
    if (v === true || v === 'true' || v === '1') return true;
    if (v === false || v === 'false' || v === '0') return false;
    throw new BadRequest(`${name} must be true or false, got ${JSON.stringify(v).slice(0, 40)}`);
  }
}
