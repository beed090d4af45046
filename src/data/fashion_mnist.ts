/**
 * Fashion-MNIST (Zalando Research): 60,000 training and 10,000 test 28x28 grayscale images of 10
 * clothing classes in the IDX format. The files are found by an explicit directory, `$GLIMPSE_DATA`,
 * the cache directory (~/.cache/glimpse/fashion-mnist), or Debian's dataset-fashion-mnist
 * (/usr/share/datasets/fashion-mnist/); otherwise they are downloaded from the upstream URLs and
 * cached only after the decompressed data matches the published sha256.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { writeFileAtomic } from '../io/safetensors.js';
import type { ImageDataset, Sample } from './dataset.js';

export const FASHION_MNIST_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
] as const;

export type Split = 'train' | 'test';

export const FASHION_MNIST_FILES: Record<Split, { images: string; labels: string }> = {
  train: { images: 'train-images-idx3-ubyte', labels: 'train-labels-idx1-ubyte' },
  test: { images: 't10k-images-idx3-ubyte', labels: 't10k-labels-idx1-ubyte' },
};

/** sha256 of the decompressed upstream files (Debian recompressed the .gz, the data is the same). */
export const FASHION_MNIST_SHA256: Record<string, string> = {
  'train-images-idx3-ubyte': 'c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888',
  'train-labels-idx1-ubyte': 'bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9',
  't10k-images-idx3-ubyte': '5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b',
  't10k-labels-idx1-ubyte': '0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34',
};

export const FASHION_MNIST_URL = 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/';

export const DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** Where downloads are cached: $XDG_CACHE_HOME/glimpse or ~/.cache/glimpse, plus the dataset's name. */
export function defaultCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'glimpse', 'fashion-mnist');
}

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/**
 * Parses an unsigned-byte IDX file (gzip'd or not): magic 0x00 0x00 0x08 <ndim>, ndim big-endian
 * uint32 sizes, then the bytes. The byte count must equal the product of the sizes.
 */
export function parseIdx(bytes: Uint8Array, source: string): IdxArray {
  let raw = bytes;
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      raw = gunzipSync(raw);
    } catch (e) {
      throw new Error(
        `${source}: not a valid gzip file (${(e as Error).message}); delete it and fetch it again`,
      );
    }
  }
  if (raw.length < 4 || raw[0] !== 0 || raw[1] !== 0 || raw[2] !== 0x08 || raw[3] < 1 || raw[3] > 4) {
    const magic = [...raw.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join('');
    throw new Error(
      `${source}: wrong IDX magic number 0x${magic} (expected 0x0000080N for unsigned bytes); not an IDX file`,
    );
  }
  const ndim = raw[3];
  const head = 4 + 4 * ndim;
  if (raw.length < head)
    throw new Error(`${source}: IDX header is truncated (${raw.length} bytes, needs ${head})`);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < ndim; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  if (raw.length - head !== count) {
    throw new Error(
      `${source}: IDX header says [${dims.join(', ')}] (${count} bytes of data) but the file holds ${raw.length - head}; the file is truncated or corrupt`,
    );
  }
  return { dims, data: raw.subarray(head) };
}

/** The path of `name` or `name.gz` in `dir`, if either exists. */
function findFile(dir: string, name: string): string | null {
  for (const candidate of [join(dir, name), join(dir, `${name}.gz`)])
    if (existsSync(candidate)) return candidate;
  return null;
}

function hasSplit(dir: string, split: Split): boolean {
  const f = FASHION_MNIST_FILES[split];
  return findFile(dir, f.images) !== null && findFile(dir, f.labels) !== null;
}

export interface LocateOptions {
  /** A directory holding the IDX files; when given it must hold them (no fallback). */
  root?: string;
  cacheDir?: string;
  /** The system-wide copy to try last (default Debian's /usr/share/datasets/fashion-mnist). */
  systemDir?: string;
}

/**
 * The directory holding `split`'s files: `root`, else $GLIMPSE_DATA (or $GLIMPSE_DATA/fashion-mnist),
 * else the cache directory, else Debian's package directory; null when none has them.
 */
export function locateFashionMnist(split: Split, options: LocateOptions = {}): string | null {
  if (options.root !== undefined) {
    if (!hasSplit(options.root, split)) {
      const f = FASHION_MNIST_FILES[split];
      throw new Error(
        `fashion-mnist: ${options.root} has no ${f.images}[.gz] and ${f.labels}[.gz]; point at the directory with the IDX files`,
      );
    }
    return options.root;
  }
  const env = process.env.GLIMPSE_DATA;
  const candidates = [
    ...(env ? [join(env, 'fashion-mnist'), env] : []),
    options.cacheDir ?? defaultCacheDir(),
    options.systemDir ?? DEBIAN_FASHION_MNIST_DIR,
  ];
  return candidates.find((dir) => hasSplit(dir, split)) ?? null;
}

export interface DownloadOptions {
  cacheDir?: string;
  /** Base URL the file names are appended to (a mirror); defaults to the upstream location. */
  baseUrl?: string;
  /** Expected sha256 of each decompressed file; defaults to the upstream checksums. */
  sha256?: Record<string, string>;
  /** Progress messages (one line each). */
  log?: (message: string) => void;
}

async function fetchBytes(url: string): Promise<Uint8Array> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(10 * 60_000) });
  } catch (e) {
    throw new Error(
      `fashion-mnist: cannot download ${url} (${(e as Error).message}); install it (apt-get install dataset-fashion-mnist) or set GLIMPSE_DATA`,
    );
  }
  if (!response.ok) throw new Error(`fashion-mnist: download of ${url} failed with HTTP ${response.status}`);
  let body: Uint8Array;
  try {
    body = new Uint8Array(await response.arrayBuffer());
  } catch (e) {
    throw new Error(
      `fashion-mnist: download of ${url} was cut off (${(e as Error).message}); nothing was cached, try again`,
    );
  }
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(declared) && body.length !== declared) {
    throw new Error(
      `fashion-mnist: download of ${url} is truncated (${body.length} of ${declared} bytes); nothing was cached, try again`,
    );
  }
  return body;
}

/**
 * Downloads `split`'s two files into the cache directory. Each is verified (gunzip, then sha256 of the
 * decompressed bytes) before it is written, atomically, so a corrupt or truncated download never
 * lands in the cache. Returns the cache directory.
 */
export async function downloadFashionMnist(split: Split, options: DownloadOptions = {}): Promise<string> {
  const dir = options.cacheDir ?? defaultCacheDir();
  const base = options.baseUrl ?? process.env.GLIMPSE_FASHION_MNIST_URL ?? FASHION_MNIST_URL;
  const sums = options.sha256 ?? FASHION_MNIST_SHA256;
  const verified: Array<[string, Uint8Array]> = [];
  for (const name of Object.values(FASHION_MNIST_FILES[split])) {
    const url = `${base.endsWith('/') ? base : `${base}/`}${name}.gz`;
    options.log?.(`downloading ${url}`);
    const gz = await fetchBytes(url);
    let raw: Uint8Array;
    try {
      raw = gunzipSync(gz);
    } catch (e) {
      throw new Error(
        `fashion-mnist: download of ${url} is corrupt or truncated (${(e as Error).message}); nothing was cached`,
      );
    }
    const digest = createHash('sha256').update(raw).digest('hex');
    if (digest !== sums[name]) {
      throw new Error(
        `fashion-mnist: checksum mismatch for ${url} (sha256 ${digest}, expected ${sums[name]}); nothing was cached`,
      );
    }
    verified.push([name, gz]);
  }
  mkdirSync(dir, { recursive: true });
  for (const [name, gz] of verified) writeFileAtomic(join(dir, `${name}.gz`), gz);
  return dir;
}

/** Fashion-MNIST images in memory as bytes; samples are (1, 28, 28) float32 in [0, 1]. */
export class FashionMnist implements ImageDataset {
  readonly classes: readonly string[] = FASHION_MNIST_CLASSES;
  readonly imageShape: readonly [number, number, number];
  readonly length: number;

  constructor(
    /** (N, H, W) uint8 */
    readonly images: Uint8Array,
    readonly labels: Uint8Array,
    height = 28,
    width = 28,
  ) {
    this.length = labels.length;
    this.imageShape = [1, height, width];
  }

  get(index: number): Sample {
    const [, h, w] = this.imageShape;
    const plane = h * w;
    const data = new Float32Array(plane);
    const src = this.images.subarray(index * plane, (index + 1) * plane);
    for (let i = 0; i < plane; i++) data[i] = src[i] / 255;
    return { image: { data, channels: 1, height: h, width: w }, label: this.labels[index] };
  }

  label(index: number): number {
    return this.labels[index];
  }
}

/** Reads one split from a directory of IDX files, checking that images and labels agree. */
export function readFashionMnistDir(dir: string, split: Split): FashionMnist {
  const names = FASHION_MNIST_FILES[split];
  const imagesPath = findFile(dir, names.images);
  const labelsPath = findFile(dir, names.labels);
  if (!imagesPath || !labelsPath)
    throw new Error(`fashion-mnist: ${dir} has no ${names.images}[.gz] and ${names.labels}[.gz]`);
  const images = parseIdx(readFileSync(imagesPath), imagesPath);
  const labels = parseIdx(readFileSync(labelsPath), labelsPath);
  if (images.dims.length !== 3) {
    throw new Error(
      `${imagesPath}: expected a 3-D IDX array (count, rows, cols), got [${images.dims.join(', ')}]`,
    );
  }
  if (labels.dims.length !== 1)
    throw new Error(`${labelsPath}: expected a 1-D IDX array of labels, got [${labels.dims.join(', ')}]`);
  if (images.dims[0] !== labels.dims[0]) {
    throw new Error(
      `fashion-mnist: ${imagesPath} has ${images.dims[0]} images but ${labelsPath} has ${labels.dims[0]} labels; the files do not belong together`,
    );
  }
  const bad = labels.data.findIndex((l) => l >= FASHION_MNIST_CLASSES.length);
  if (bad >= 0)
    throw new Error(`${labelsPath}: label ${labels.data[bad]} at index ${bad} is not a class (0..9)`);
  return new FashionMnist(images.data, labels.data, images.dims[1], images.dims[2]);
}

export interface LoadFashionMnistOptions extends LocateOptions, DownloadOptions {
  /** Download when no local copy is found (default true). */
  download?: boolean;
}

/** Finds (or downloads) and reads one split. */
export async function loadFashionMnist(
  split: Split,
  options: LoadFashionMnistOptions = {},
): Promise<FashionMnist> {
  let dir = locateFashionMnist(split, options);
  if (!dir) {
    if (options.download === false) {
      throw new Error(
        `fashion-mnist: no local copy found ($GLIMPSE_DATA, ${options.cacheDir ?? defaultCacheDir()}, ${options.systemDir ?? DEBIAN_FASHION_MNIST_DIR}); install dataset-fashion-mnist, set GLIMPSE_DATA or allow the download`,
      );
    }
    dir = await downloadFashionMnist(split, options);
  }
  return readFashionMnistDir(dir, split);
}
