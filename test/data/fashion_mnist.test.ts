import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import {
  DEBIAN_FASHION_MNIST_DIR,
  downloadFashionMnist,
  FASHION_MNIST_SHA256,
  loadFashionMnist,
  locateFashionMnist,
  parseIdx,
  readFashionMnistDir,
} from '../../src/data/fashion_mnist.js';
import { fixturePath } from '../helpers/fixtures.js';

const SLICE = fixturePath('fashion_mnist_slice');
const tmp = mkdtempSync(join(tmpdir(), 'glimpse-fmnist-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function idx(magic: number, dims: number[], payload: number): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + payload);
  const v = new DataView(out.buffer);
  v.setUint32(0, magic, false);
  dims.forEach((d, i) => {
    v.setUint32(4 + 4 * i, d, false);
  });
  return out;
}

describe('IDX parsing', () => {
  test('the committed slice: 500 train and 200 test images with labels in 0..9', () => {
    const train = readFashionMnistDir(SLICE, 'train');
    const test = readFashionMnistDir(SLICE, 'test');
    assert.equal(train.length, 500);
    assert.equal(test.length, 200);
    assert.deepEqual(train.imageShape, [1, 28, 28]);
    const s = train.get(0);
    assert.equal(s.image.data.length, 784);
    assert.ok(Math.max(...s.image.data) <= 1 && Math.min(...s.image.data) >= 0);
    // First training label of upstream Fashion-MNIST is 9 (ankle boot).
    assert.equal(s.label, 9);
    assert.equal(train.label(0), 9);
  });

  test('wrong magic number', () => {
    assert.throws(
      () => parseIdx(idx(0x00000901, [2], 2), 'bad.idx'),
      /bad\.idx: wrong IDX magic number 0x00000901/,
    );
    assert.throws(
      () => parseIdx(new TextEncoder().encode('hello world'), 'text.idx'),
      /wrong IDX magic number 0x68656c6c/,
    );
  });

  test('a count that does not match the data', () => {
    assert.throws(
      () => parseIdx(idx(0x00000803, [3, 28, 28], 2 * 784), 'short.idx'),
      /header says \[3, 28, 28\] \(2352 bytes of data\) but the file holds 1568/,
    );
    assert.throws(() => parseIdx(idx(0x00000801, [5], 7), 'long.idx'), /holds 7/);
  });

  test('images and labels of different lengths, gzip or not, are rejected when read together', () => {
    const dir = join(tmp, 'mismatch');
    mkdirSync(dir);
    copyFileSync(join(SLICE, 't10k-images-idx3-ubyte.gz'), join(dir, 't10k-images-idx3-ubyte.gz'));
    const labels = idx(0x00000801, [199], 199);
    writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), labels);
    assert.throws(() => readFashionMnistDir(dir, 'test'), /has 200 images but .* has 199 labels/);
  });

  test('a truncated gzip file names the file', () => {
    const dir = join(tmp, 'truncgz');
    mkdirSync(dir);
    const gz = readFileSync(join(SLICE, 't10k-labels-idx1-ubyte.gz'));
    writeFileSync(join(dir, 't10k-labels-idx1-ubyte.gz'), gz.subarray(0, gz.length - 20));
    copyFileSync(join(SLICE, 't10k-images-idx3-ubyte.gz'), join(dir, 't10k-images-idx3-ubyte.gz'));
    assert.throws(
      () => readFashionMnistDir(dir, 'test'),
      /t10k-labels-idx1-ubyte\.gz: not a valid gzip file/,
    );
  });
});

describe('locating the files', () => {
  test('explicit root wins and must hold the files', () => {
    assert.equal(locateFashionMnist('train', { root: SLICE }), SLICE);
    assert.throws(() => locateFashionMnist('train', { root: tmp }), /has no train-images-idx3-ubyte\[\.gz\]/);
  });

  test('GLIMPSE_DATA, then the cache directory', () => {
    const empty = join(tmp, 'empty-cache');
    const saved = process.env.GLIMPSE_DATA;
    try {
      process.env.GLIMPSE_DATA = SLICE;
      assert.equal(locateFashionMnist('test', { cacheDir: empty }), SLICE);
      delete process.env.GLIMPSE_DATA;
      assert.equal(locateFashionMnist('test', { cacheDir: SLICE }), SLICE);
      assert.equal(locateFashionMnist('test', { cacheDir: empty, systemDir: SLICE }), SLICE);
      assert.equal(locateFashionMnist('test', { cacheDir: empty, systemDir: empty }), null);
    } finally {
      if (saved === undefined) delete process.env.GLIMPSE_DATA;
      else process.env.GLIMPSE_DATA = saved;
    }
  });

  test('the Debian package holds the upstream data (sha256 of the decompressed files)', (t) => {
    if (!existsSync(DEBIAN_FASHION_MNIST_DIR)) {
      t.skip(`${DEBIAN_FASHION_MNIST_DIR} is absent (apt-get install dataset-fashion-mnist)`);
      return;
    }
    const name = 't10k-labels-idx1-ubyte';
    const raw = gunzipSync(readFileSync(join(DEBIAN_FASHION_MNIST_DIR, `${name}.gz`)));
    assert.equal(createHash('sha256').update(raw).digest('hex'), FASHION_MNIST_SHA256[name]);
  });
});

describe('downloading from a local HTTP server', () => {
  // Serves the slice's test split as a mirror would; ?mode switches between good, corrupt and truncated.
  let server: Server;
  let base = '';
  let mode: 'good' | 'corrupt' | 'truncated-length' | 'truncated-gzip' | 'missing' = 'good';
  const files = new Map<string, Buffer>();
  const sums: Record<string, string> = {};
  for (const name of ['t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']) {
    const raw = gunzipSync(readFileSync(join(SLICE, `${name}.gz`)));
    files.set(`/${name}.gz`, gzipSync(raw));
    sums[name] = createHash('sha256').update(raw).digest('hex');
  }

  before(async () => {
    server = createServer((req, res) => {
      const body = files.get(req.url ?? '');
      if (!body || mode === 'missing') {
        res.writeHead(404).end();
        return;
      }
      if (mode === 'corrupt') {
        // Valid gzip of different bytes: only the checksum can tell.
        const raw = gunzipSync(body);
        raw[raw.length - 1] ^= 0xff;
        res.writeHead(200).end(gzipSync(raw));
      } else if (mode === 'truncated-length') {
        res.writeHead(200, { 'content-length': body.length });
        res.write(body.subarray(0, body.length >> 1));
        setTimeout(() => res.socket?.destroy(), 20);
      } else if (mode === 'truncated-gzip') {
        res.writeHead(200).end(body.subarray(0, body.length - 40));
      } else {
        res.writeHead(200, { 'content-length': body.length }).end(body);
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  after(() => server.close());

  const cacheOf = (name: string) => join(tmp, `cache-${name}`);

  for (const [bad, message] of [
    [
      'corrupt',
      /checksum mismatch for http:\/\/127\.0\.0\.1:\d+\/t10k-images-idx3-ubyte\.gz \(sha256 [0-9a-f]{64}, expected [0-9a-f]{64}\); nothing was cached/,
    ],
    [
      'truncated-length',
      /download of http:.*t10k-images-idx3-ubyte\.gz (was cut off \(.*\)|is truncated \(\d+ of \d+ bytes\)); nothing was cached/,
    ],
    [
      'truncated-gzip',
      /download of http:.* is corrupt or truncated \(unexpected end of file\); nothing was cached/,
    ],
    ['missing', /failed with HTTP 404/],
  ] as const) {
    test(`a ${bad} download is rejected and leaves no file in the cache`, async () => {
      mode = bad;
      const cacheDir = cacheOf(bad);
      await assert.rejects(downloadFashionMnist('test', { cacheDir, baseUrl: base, sha256: sums }), message);
      assert.ok(
        !existsSync(cacheDir) || readdirSync(cacheDir).length === 0,
        `cache has ${existsSync(cacheDir) && readdirSync(cacheDir)}`,
      );
    });
  }

  test('a good download verifies, caches, and the cache is then found', async () => {
    mode = 'good';
    const cacheDir = cacheOf('good');
    const messages: string[] = [];
    const dir = await downloadFashionMnist('test', {
      cacheDir,
      baseUrl: base,
      sha256: sums,
      log: (m) => messages.push(m),
    });
    assert.equal(dir, cacheDir);
    assert.deepEqual(readdirSync(cacheDir).sort(), [
      't10k-images-idx3-ubyte.gz',
      't10k-labels-idx1-ubyte.gz',
    ]);
    assert.ok(messages.some((m) => m.endsWith('/t10k-images-idx3-ubyte.gz')));
    const cached = readFashionMnistDir(cacheDir, 'test');
    assert.equal(cached.length, 200);
    assert.deepEqual([...cached.labels], [...readFashionMnistDir(SLICE, 'test').labels]);
    const saved = process.env.GLIMPSE_DATA;
    delete process.env.GLIMPSE_DATA;
    try {
      assert.equal(locateFashionMnist('test', { cacheDir }), cacheDir);
      // loadFashionMnist finds the cached copy and does not download again (the server now fails).
      mode = 'missing';
      assert.equal((await loadFashionMnist('test', { cacheDir, baseUrl: base, sha256: sums })).length, 200);
    } finally {
      if (saved !== undefined) process.env.GLIMPSE_DATA = saved;
    }
  });

  test('with download disabled and nothing local, the error says where it looked', async () => {
    const saved = process.env.GLIMPSE_DATA;
    delete process.env.GLIMPSE_DATA;
    try {
      const options = { download: false, cacheDir: join(tmp, 'nowhere'), systemDir: join(tmp, 'no-system') };
      await assert.rejects(
        loadFashionMnist('test', options),
        /fashion-mnist: no local copy found \(\$GLIMPSE_DATA, .*nowhere, .*no-system\)/,
      );
    } finally {
      if (saved !== undefined) process.env.GLIMPSE_DATA = saved;
    }
  });
});
