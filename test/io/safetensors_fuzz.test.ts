/**
 * Fuzzing the safetensors reader: thousands of mutated files, each either rejected with a
 * SafetensorsError or read correctly (every tensor checked against an independent decode of its
 * bytes), never another exception, never a hang, never an allocation out of proportion to the
 * file. Seeded: GLIMPSE_FUZZ_SEED=<n> reproduces a run; a failure names the seed, case and mutation.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, describe, test } from 'node:test';
import {
  Generator,
  parseSafetensors,
  readSafetensors,
  SafetensorsError,
  serializeSafetensors,
  tensor,
} from '../../src/index.js';
import type { SafetensorsFile } from '../../src/io/safetensors.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { fixturePath } from '../helpers/fixtures.js';

const SEED = Number(process.env.GLIMPSE_FUZZ_SEED ?? 20240611);
const CASES = 4000;
/** Every FILE_EVERY-th case also goes through readSafetensors on disk, which must agree. */
const FILE_EVERY = 10;
/** Decoded tensors may take at most 4x the file (U8 widens to int32) plus this slack. */
const ALLOC_SLACK = 16 * 2 ** 20;

const dir = mkdtempSync(join(tmpdir(), 'glimpse-fuzz-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const rng = new Generator(SEED);
const pick = <T>(xs: readonly T[]): T => xs[rng.int(0, xs.length)];

function image(header: string, data: Uint8Array, headerLength?: bigint): Uint8Array {
  const json = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, headerLength ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function split(img: Uint8Array): { header: string; data: Uint8Array } {
  const len = Number(new DataView(img.buffer, img.byteOffset).getBigUint64(0, true));
  return { header: new TextDecoder().decode(img.subarray(8, 8 + len)), data: img.slice(8 + len) };
}

const BASES: Array<[string, Uint8Array]> = [
  [
    'every dtype',
    serializeSafetensors(
      {
        f32: tensor([1.5, -2, Number.NaN, Infinity, 3e-41, 7], [2, 3]),
        f16: tensor([0.5, -65504, 2 ** -24, Number.NaN], [4]),
        bf16: tensor([1, -3.5, 1e30], [3, 1]),
        f64: tensor([0.1, -1e-3], [2]),
        i64: tensor([-(2 ** 40), 0, 5], [3], 'int64'),
        i32: tensor([-7, 2 ** 30], [1, 2], 'int32'),
        u8: tensor([0, 200, 255], [3], 'int32'),
        mask: tensor([true, false, true]),
        empty: tensor([], [2, 0]),
        scalar: tensor([42], []),
      },
      {
        dtypes: { f16: 'F16', bf16: 'BF16', f64: 'F64', u8: 'U8' },
        metadata: { format: 'pt', note: 'ünï' },
      },
    ),
  ],
  ['torch fixture', new Uint8Array(readFileSync(fixturePath('torch/torch_losses.io.safetensors')))],
  ['one tensor', serializeSafetensors({ w: tensor([1, 2, 3, 4]) })],
];

/** Values a lying header likes to use. */
const HUGE = [2 ** 53 - 1, 2 ** 40, 1e15, 2 ** 31, 2 ** 32 + 4, 4e15, Number.MAX_SAFE_INTEGER];
const SHAPE_LIES: unknown[] = [
  [1e15],
  [2 ** 26, 2 ** 26, 2 ** 26],
  [2 ** 53 - 1, 0],
  [0, 2 ** 53 - 1, 2 ** 53 - 1],
  [2 ** 40, 2 ** 40, 0],
  [2 ** 30, 4],
  [-1],
  [1.5],
  [],
  ['2'],
  [[2]],
  [null],
  Array(70).fill(1),
  '4',
  null,
  {},
];
const DTYPES: unknown[] = [
  ...['F32', 'F16', 'BF16', 'F64', 'I64', 'I32', 'U8', 'BOOL', 'I8', 'I16', 'U16'],
  ...['F8_E4M3', 'f32', '', 'toString', '__proto__', 'constructor', 7, null, ['F32']],
];
const HEADER_BYTES = '{}[]",:0123456789-.eE \\u\u00ff';

type Mutation = (img: Uint8Array) => [Uint8Array, string];

const mutations: Mutation[] = [
  function bitFlips(img) {
    const out = img.slice();
    const n = rng.int(1, 9);
    for (let k = 0; k < n; k++) out[rng.int(0, out.length)] ^= 1 << rng.int(0, 8);
    return [out, `${n} bit flips`];
  },
  function dataBytes(img) {
    // a valid header over arbitrary data: NaN payloads, BOOL bytes other than 0/1, huge I64 values
    const out = img.slice();
    const len = Number(new DataView(out.buffer).getBigUint64(0, true));
    const n = rng.int(1, 17);
    for (let k = 0; k < n && out.length > 8 + len; k++)
      out[8 + len + rng.int(0, out.length - 8 - len)] = rng.int(0, 256);
    return [out, `${n} data byte changes`];
  },
  function headerByte(img) {
    const out = img.slice();
    const len = Number(new DataView(out.buffer).getBigUint64(0, true));
    const n = rng.int(1, 4);
    for (let k = 0; k < n; k++) {
      const at = 8 + rng.int(0, len);
      out[at] =
        rng.next() < 0.5 ? rng.int(0, 256) : HEADER_BYTES.charCodeAt(rng.int(0, HEADER_BYTES.length)) & 0xff;
    }
    return [out, `${n} header byte changes`];
  },
  function truncate(img) {
    const len = Number(new DataView(img.buffer, img.byteOffset).getBigUint64(0, true));
    const region = rng.int(0, 4);
    const cut = [
      rng.int(0, 8),
      8 + rng.int(0, len + 1),
      8 + len + rng.int(0, img.length - 8 - len),
      img.length - 1,
    ][region];
    return [img.slice(0, cut), `truncated to ${cut} bytes (region ${region})`];
  },
  function headerLength(img) {
    const out = img.slice();
    const dv = new DataView(out.buffer);
    const len = dv.getBigUint64(0, true);
    const choices = [
      2n ** 64n - 1n,
      2n ** 63n,
      2n ** 53n + 1n,
      100_000_001n,
      BigInt(out.length),
      BigInt(out.length - 8),
      len + BigInt(rng.int(-8, 9)),
      BigInt(rng.int(0, 2 ** 31)) * BigInt(rng.int(0, 2 ** 31)),
      0n,
    ];
    const v = pick(choices);
    dv.setBigUint64(0, v < 0n ? 0n : v % 2n ** 64n, true);
    return [out, `header length ${v}`];
  },
  function lyingEntry(img) {
    const { header, data } = split(img);
    const h = JSON.parse(header) as Record<string, Record<string, unknown>>;
    const names = Object.keys(h).filter((k) => k !== '__metadata__');
    const name = pick(names);
    const field = rng.int(0, 5);
    let what: string;
    if (field === 0) {
      h[name].shape = pick(SHAPE_LIES);
      what = `shape ${JSON.stringify(h[name].shape)?.slice(0, 60)}`;
    } else if (field === 1) {
      h[name].dtype = pick(DTYPES);
      what = `dtype ${JSON.stringify(h[name].dtype)}`;
    } else if (field === 2) {
      const offs = h[name].data_offsets as number[];
      const other = h[pick(names)].data_offsets as number[];
      const options: unknown[] = [
        [offs[0], pick(HUGE)],
        [pick(HUGE), pick(HUGE)],
        [offs[1], offs[0]],
        [offs[0] - 1, offs[1] - 1],
        [other[0], other[0] + (offs[1] - offs[0])],
        [offs[0] + 1, offs[1] + 1],
        [offs[0], offs[1], 0],
        [-4, offs[1]],
        [offs[0] + 0.5, offs[1]],
      ];
      h[name].data_offsets = pick(options);
      what = `data_offsets ${JSON.stringify(h[name].data_offsets)}`;
    } else if (field === 3) {
      h.__metadata__ = pick([
        { a: 1 },
        ['x'],
        'meta',
        { ok: 'yes', n: null },
        { nested: { a: 'b' } },
      ]) as never;
      what = `metadata ${JSON.stringify(h.__metadata__)}`;
    } else {
      delete h[name];
      what = `deleted ${name}`;
    }
    return [image(JSON.stringify(h), data), what];
  },
  function duplicateKey(img) {
    const { header, data } = split(img);
    const h = JSON.parse(header) as Record<string, unknown>;
    const name = pick(Object.keys(h));
    const entry = JSON.stringify(h[name]);
    const text = `${header.trimEnd().slice(0, -1)},${JSON.stringify(name)}:${entry}}`;
    return [image(text, data), `duplicated key ${name}`];
  },
  function deepNesting(img) {
    // a JSON value nested thousands of levels deep in place of a field (stack-overflow bait)
    const { header, data } = split(img);
    const h = JSON.parse(header) as Record<string, Record<string, unknown>>;
    const name = pick(Object.keys(h));
    const depth = pick([17, 1000, 100_000]);
    const text = JSON.stringify(h).replace(
      `${JSON.stringify(name)}:`,
      `${JSON.stringify(name)}:${'['.repeat(depth)}${']'.repeat(depth)},"x${rng.int(0, 1e9)}":`,
    );
    return [image(text, data), `nesting ${depth} deep before ${name}`];
  },
  function splice(img) {
    const { header, data } = split(img);
    const at = rng.int(0, header.length + 1);
    const junk = Array.from(
      { length: rng.int(1, 6) },
      () => HEADER_BYTES[rng.int(0, HEADER_BYTES.length)],
    ).join('');
    const text =
      rng.next() < 0.5
        ? header.slice(0, at) + junk + header.slice(at)
        : header.slice(0, at) + header.slice(at + junk.length);
    return [image(text, data), `header splice at ${at}`];
  },
];

/** Mutations that need a parseable header cannot follow another one. */
const stackable = mutations.filter((m) => !['lyingEntry', 'duplicateKey', 'deepNesting'].includes(m.name));

/** An independent decode of one element of the file's bytes, for checking what the reader returned. */
function expectedValue(dtype: string, dv: DataView, i: number): number {
  switch (dtype) {
    case 'F32':
      return dv.getFloat32(4 * i, true);
    case 'F64':
      return Math.fround(dv.getFloat64(8 * i, true));
    case 'F16': {
      const h = dv.getUint16(2 * i, true);
      const e = (h >> 10) & 31;
      const m = h & 1023;
      const mag =
        e === 0 ? m * 2 ** -24 : e === 31 ? (m ? Number.NaN : Infinity) : (1024 + m) * 2 ** (e - 25);
      return h & 0x8000 ? -mag : mag;
    }
    case 'BF16': {
      const w = new DataView(new ArrayBuffer(4));
      w.setUint16(0, dv.getUint16(2 * i, true), false);
      return w.getFloat32(0, false);
    }
    case 'I64':
      return Number(dv.getBigInt64(8 * i, true));
    case 'I32':
      return dv.getInt32(4 * i, true);
    case 'I16':
      return dv.getInt16(2 * i, true);
    case 'U16':
      return dv.getUint16(2 * i, true);
    case 'I8':
      return dv.getInt8(i);
    case 'U8':
      return dv.getUint8(i);
    case 'BOOL':
      return dv.getUint8(i) ? 1 : 0;
  }
  throw new Error(`accepted an unknown dtype ${dtype}`);
}

/** Checks an accepted file: every tensor matches its header entry and an independent decode. */
function checkAccepted(file: SafetensorsFile, img: Uint8Array, where: string): void {
  const { header } = split(img);
  const dataStart = img.length - split(img).data.length;
  const entries = JSON.parse(header) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: number[] }
  >;
  let bytes = 0;
  for (const [name, t] of file.tensors) {
    const e = entries[name];
    assert.ok(e, `${where}: tensor '${name}' is not in the header`);
    assert.deepEqual(t.shape, e.shape, `${where}: '${name}' shape`);
    assert.equal(file.dtypes.get(name), e.dtype, `${where}: '${name}' dtype`);
    const dv = new DataView(img.buffer, img.byteOffset + dataStart + e.data_offsets[0]);
    for (let i = 0; i < t.size; i++) {
      assert.ok(
        Object.is(t.data[i], expectedValue(e.dtype, dv, i)),
        `${where}: '${name}'[${i}] = ${t.data[i]}`,
      );
    }
    bytes += t.data.byteLength;
  }
  assert.equal(file.tensors.size, Object.keys(entries).filter((k) => k !== '__metadata__').length, where);
  assert.ok(bytes <= 4 * img.length, `${where}: tensors take ${bytes} bytes for a ${img.length}-byte file`);
}

/** Same shape and values, NaN equal to NaN. */
function identical(a: Tensor, b: Tensor): boolean {
  if (a.size !== b.size || a.dtype !== b.dtype) return false;
  for (let i = 0; i < a.size; i++) if (!Object.is(a.data[i], b.data[i])) return false;
  return true;
}

function sameResult(a: SafetensorsFile, b: SafetensorsFile, where: string): void {
  assert.deepEqual([...a.tensors.keys()], [...b.tensors.keys()], `${where}: tensor names`);
  for (const [k, t] of a.tensors) {
    const u = b.tensors.get(k);
    assert.ok(u && identical(t, u), `${where}: '${k}' differs between readers`);
  }
  assert.deepEqual(a.metadata, b.metadata, `${where}: metadata`);
}

/** Runs a reader; returns its result or the SafetensorsError; any other exception fails the test. */
function attempt(read: () => SafetensorsFile, where: string): SafetensorsFile | SafetensorsError {
  try {
    return read();
  } catch (e) {
    if (e instanceof SafetensorsError) return e;
    assert.fail(`${where}: threw ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
  }
}

describe(`safetensors fuzzing (seed ${SEED}, ${CASES} cases)`, () => {
  test('every mutated file is rejected with SafetensorsError or read correctly, quickly, in bounded memory', {
    timeout: 120_000,
  }, () => {
    const counts = { accepted: 0, rejected: 0, viaFile: 0 };
    const byMutation = new Map<string, number>();
    let slowest = 0;
    let worstGrowth = 0;
    for (let c = 0; c < CASES; c++) {
      const [baseName, base] = pick(BASES);
      const mutation = pick(mutations);
      let [img, what] = mutation(base);
      // Stack a second mutation now and then: lies behind a corrupted length, etc.
      const stacked = rng.next() < 0.2 && img.length >= 8;
      if (stacked) {
        const [img2, what2] = pick(stackable)(img);
        img = img2;
        what = `${what}, then ${what2}`;
      }
      const where = `seed ${SEED} case ${c} (${baseName}: ${mutation.name}: ${what})`;
      const arrayBuffersBefore = process.memoryUsage().arrayBuffers;
      const t0 = performance.now();
      const result = attempt(() => parseSafetensors(img, `case ${c}`), where);
      const elapsed = performance.now() - t0;
      const growth = process.memoryUsage().arrayBuffers - arrayBuffersBefore;
      slowest = Math.max(slowest, elapsed);
      worstGrowth = Math.max(worstGrowth, growth);
      assert.ok(elapsed < 2000, `${where}: took ${elapsed.toFixed(0)} ms`);
      assert.ok(growth < 4 * img.length + ALLOC_SLACK, `${where}: array buffers grew by ${growth} bytes`);
      if (mutation.name === 'duplicateKey' && !stacked) {
        // the format forbids duplicates, and readers disagree on which one wins
        assert.ok(result instanceof SafetensorsError && /repeats the key/.test(result.message), where);
      }
      if (result instanceof SafetensorsError) {
        counts.rejected++;
        assert.match(result.message, new RegExp(`^safetensors case ${c}: `), where);
      } else {
        counts.accepted++;
        checkAccepted(result, img, where);
      }
      byMutation.set(mutation.name, (byMutation.get(mutation.name) ?? 0) + 1);
      if (c % FILE_EVERY === 0) {
        counts.viaFile++;
        const p = join(dir, 'case.safetensors');
        writeFileSync(p, img);
        const fromFile = attempt(() => readSafetensors(p), `${where} via file`);
        assert.equal(
          fromFile instanceof SafetensorsError,
          result instanceof SafetensorsError,
          `${where}: readers disagree`,
        );
        if (!(fromFile instanceof SafetensorsError) && !(result instanceof SafetensorsError)) {
          sameResult(result, fromFile, where);
        }
      }
    }
    // the corpus must exercise both outcomes and every mutation
    assert.ok(counts.accepted > 100 && counts.rejected > 1000, JSON.stringify(counts));
    assert.equal(byMutation.size, mutations.length);
    console.log(
      `fuzz: ${JSON.stringify(counts)}, slowest case ${slowest.toFixed(1)} ms, worst array-buffer growth ${worstGrowth} bytes`,
    );
  });

  test('a header claiming a 10^15-element tensor fails fast without allocating it', () => {
    const lies: Array<[string, object, number]> = [
      ['span past the data', { w: { dtype: 'F32', shape: [1e15], data_offsets: [0, 4e15] } }, 16],
      ['span that fits', { w: { dtype: 'F32', shape: [1e15], data_offsets: [0, 16] } }, 16],
      [
        'product beyond 2^53',
        { w: { dtype: 'F64', shape: [2 ** 30, 2 ** 30, 2 ** 30], data_offsets: [0, 8] } },
        8,
      ],
      [
        'a 1 GiB claim in a small file',
        { w: { dtype: 'F32', shape: [2 ** 28], data_offsets: [0, 2 ** 30] } },
        64,
      ],
    ];
    for (const [what, header, dataLen] of lies) {
      const img = image(JSON.stringify(header), new Uint8Array(dataLen));
      const before = process.memoryUsage().arrayBuffers;
      const t0 = performance.now();
      assert.throws(() => parseSafetensors(img), SafetensorsError, what);
      const p = join(dir, 'lie.safetensors');
      writeFileSync(p, img);
      assert.throws(() => readSafetensors(p), SafetensorsError, what);
      assert.ok(performance.now() - t0 < 500, `${what}: took ${performance.now() - t0} ms`);
      assert.ok(process.memoryUsage().arrayBuffers - before < ALLOC_SLACK, `${what}: allocated`);
    }
  });

  test('a header length near the 100 MB limit in a tiny file is rejected before allocating the header', () => {
    const img = image('{}', new Uint8Array(0), 99_999_999n);
    const p = join(dir, 'long-header.safetensors');
    writeFileSync(p, img);
    const before = process.memoryUsage().arrayBuffers;
    assert.throws(
      () => readSafetensors(p),
      /header length 99999999 runs past the end of the file \(10 bytes\)/,
    );
    assert.ok(process.memoryUsage().arrayBuffers - before < ALLOC_SLACK);
  });

  test('many tensors sharing one span are rejected before any is decoded', () => {
    const header: Record<string, object> = {};
    for (let i = 0; i < 2000; i++)
      header[`t${i}`] = { dtype: 'F32', shape: [2 ** 18], data_offsets: [0, 2 ** 20] };
    const img = image(JSON.stringify(header), new Uint8Array(2 ** 20));
    const before = process.memoryUsage().arrayBuffers;
    assert.throws(() => parseSafetensors(img), /overlap/);
    // decoding each before the overlap check would take 2000 MiB
    assert.ok(process.memoryUsage().arrayBuffers - before < ALLOC_SLACK + 4 * img.length);
  });
});
