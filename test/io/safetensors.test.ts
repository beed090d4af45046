import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  parseSafetensors,
  readSafetensors,
  SafetensorsError,
  serializeSafetensors,
  tensor,
  writeSafetensors,
} from '../../src/index.js';
import type { SafetensorsDType } from '../../src/io/safetensors.js';
import { writeFileAtomic } from '../../src/io/safetensors.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { FIXTURES } from '../helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'glimpse-safetensors-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileCounter = 0;

function tmpFile(bytes: Uint8Array): string {
  const p = join(dir, `case${fileCounter++}.safetensors`);
  writeFileSync(p, bytes);
  return p;
}

/** A safetensors image from a header (object or raw JSON text) and a data section. */
function craft(
  header: object | string | Uint8Array,
  data: Uint8Array | number = 0,
  headerLength?: bigint,
): Uint8Array {
  const json =
    header instanceof Uint8Array
      ? header
      : new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + body.length);
  new DataView(out.buffer).setBigUint64(0, headerLength ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(body, 8 + json.length);
  return out;
}

/** The bytes of the first tensor of a serialized single-tensor image. */
function dataBytes(image: Uint8Array): DataView {
  const len = Number(new DataView(image.buffer).getBigUint64(0, true));
  return new DataView(image.buffer, 8 + len);
}

function bits16(values: number[], dtype: 'F16' | 'BF16'): number[] {
  const image = serializeSafetensors({ x: tensor(values) }, { dtype });
  const dv = dataBytes(image);
  return values.map((_, i) => dv.getUint16(2 * i, true));
}

function sameTensor(a: Tensor, b: Tensor, what: string): void {
  assert.deepEqual(a.shape, b.shape, `${what}: shape`);
  assert.equal(a.dtype, b.dtype, `${what}: dtype`);
  assert.deepEqual(Array.from(a.data), Array.from(b.data), `${what}: values`);
}

describe('safetensors round trips', () => {
  const cases: Array<[SafetensorsDType, Tensor, string]> = [
    ['F32', tensor([1.5, -2.25, 3e38, -1e-40, 0, Infinity, -Infinity, Number.NaN], [2, 4]), 'float32'],
    ['F16', tensor([1, -2.5, 65504, 2 ** -24, 2 ** -14, Infinity, -Infinity, Number.NaN], [8]), 'float32'],
    ['BF16', tensor([1, -2.5, 3.3895313892515355e38, 2 ** -130, Infinity, Number.NaN], [3, 2]), 'float32'],
    ['F64', tensor([1.25, -1e-30, 7e37], [3]), 'float32'],
    ['I64', tensor([0, -1, 2 ** 53, -(2 ** 53), 123456789012], [5], 'int64'), 'int64'],
    ['I32', tensor([0, -1, 2147483647, -2147483648], [2, 2], 'int32'), 'int32'],
    ['U8', tensor([0, 1, 127, 255], [4], 'int32'), 'int32'],
    ['BOOL', tensor([1, 0, 0, 1, 1], [5], 'bool'), 'bool'],
    ['I8', tensor([-128, 0, 127], [3], 'int32'), 'int32'],
    ['I16', tensor([-32768, 5, 32767], [3], 'int32'), 'int32'],
    ['U16', tensor([0, 65535], [2], 'int32'), 'int32'],
  ];
  for (const [dtype, t, glimpseDType] of cases) {
    test(`${dtype} -> ${glimpseDType}, through a file`, () => {
      const p = join(dir, `rt_${dtype}.safetensors`);
      writeSafetensors(p, { t }, { dtypes: { t: dtype } });
      const back = readSafetensors(p);
      assert.equal(back.dtypes.get('t'), dtype);
      const got = back.tensors.get('t') as Tensor;
      assert.equal(got.dtype, glimpseDType);
      assert.deepEqual(got.shape, t.shape);
      assert.deepEqual(Array.from(got.data), Array.from(t.data));
    });
  }
  test('scalars, empty tensors and many tensors keep their shapes and order', () => {
    const tensors = new Map<string, Tensor>([
      ['scalar', tensor([3.5], [])],
      ['empty', tensor([], [0, 3])],
      ['b', tensor([1, 2, 3], [3], 'int64')],
      ['a', tensor([true, false])],
      ['__proto__', tensor([7], [1])],
    ]);
    const back = parseSafetensors(serializeSafetensors(tensors));
    assert.deepEqual([...back.tensors.keys()], [...tensors.keys()]);
    for (const [k, t] of tensors) sameTensor(back.tensors.get(k) as Tensor, t, k);
  });
  test('F16 rounds to nearest even, including subnormals, overflow, signed zero, inf and nan', () => {
    const values = [
      1 + 2 ** -11,
      1 + 3 * 2 ** -11,
      65519,
      65520,
      65504,
      2 ** -25,
      3 * 2 ** -26,
      1.5 * 2 ** -24,
    ];
    const more = [2.5 * 2 ** -24, 2 ** -14, -0, -Infinity, Number.NaN, 1e-9, 1e6];
    assert.deepEqual(bits16([...values, ...more], 'F16'), [
      0x3c00, // tie -> even (1)
      0x3c02, // tie -> even (1 + 2^-9)
      0x7bff, // below the halfway point to 65536
      0x7c00, // halfway to 65536 rounds to even = overflow to inf
      0x7bff,
      0x0000, // tie between 0 and the smallest subnormal -> 0
      0x0001,
      0x0002, // tie between subnormals 1 and 2 -> 2
      0x0002, // tie between 2 and 3 -> 2
      0x0400,
      0x8000,
      0xfc00,
      0x7e00,
      0x0000,
      0x7c00,
    ]);
  });
  test('BF16 rounds to nearest even; f32 max overflows to inf; nan stays nan', () => {
    const values = [
      1 + 2 ** -8,
      1 + 3 * 2 ** -8,
      1 + 2 ** -8 + 2 ** -20,
      3.4028234663852886e38,
      -0,
      -Infinity,
    ];
    assert.deepEqual(bits16([...values, Number.NaN, 2 ** -133], 'BF16'), [
      0x3f80,
      0x3f82,
      0x3f81,
      0x7f80,
      0x8000,
      0xff80,
      0x7fc0,
      0x0001, // float32 subnormal 2^-133 is bf16's smallest subnormal
    ]);
    const back = parseSafetensors(
      serializeSafetensors({ x: tensor([Number.NaN, 1 + 3 * 2 ** -8]) }, { dtype: 'BF16' }),
    );
    const x = back.tensors.get('x') as Tensor;
    assert.ok(Number.isNaN(x.data[0]));
    assert.equal(x.data[1], 1 + 2 ** -6);
  });
  test('__metadata__ round trips (unicode, empty values, a key named __proto__)', () => {
    const metadata = JSON.parse('{"format":"pt","note":"größe ✓ 𝛼","empty":"","__proto__":"x"}');
    const back = parseSafetensors(serializeSafetensors({ w: tensor([1]) }, { metadata }));
    assert.deepEqual(Object.entries(back.metadata), Object.entries(metadata));
    assert.deepEqual(parseSafetensors(serializeSafetensors({ w: tensor([1]) })).metadata, {});
  });
  test('parsed tensors own their memory: Buffer input at odd offsets, later writes to it change nothing', () => {
    const image = serializeSafetensors({ a: tensor([1, 2, 3]), m: tensor([true, false]), b: tensor([4.5]) });
    const padded = Buffer.alloc(image.length + 3);
    padded.set(image, 3);
    const view = padded.subarray(3);
    const back = parseSafetensors(view);
    view.fill(0);
    assert.deepEqual(Array.from(back.tensors.get('a')?.data ?? []), [1, 2, 3]);
    assert.deepEqual(Array.from(back.tensors.get('m')?.data ?? []), [1, 0]);
    assert.deepEqual(Array.from(back.tensors.get('b')?.data ?? []), [4.5]);
  });
  test('the header is padded so the data starts 8-byte aligned', () => {
    const image = serializeSafetensors({ abc: tensor([1, 2]) });
    const len = Number(new DataView(image.buffer).getBigUint64(0, true));
    assert.equal((8 + len) % 8, 0);
  });
});

describe('safetensors fixtures', () => {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.safetensors')) files.push(p);
    }
  };
  walk(FIXTURES);
  test('there are fixtures to read', () => assert.ok(files.length >= 10, `found ${files.length}`));
  for (const file of files) {
    const rel = file.slice(FIXTURES.length + 1);
    test(`reads ${rel}: file and in-memory readers agree; rewriting with the same dtypes round trips`, () => {
      const fromFile = readSafetensors(file);
      const fromBytes = parseSafetensors(readFileSync(file), file);
      assert.ok(fromFile.tensors.size > 0, 'has tensors');
      assert.deepEqual([...fromFile.tensors.keys()].sort(), [...fromBytes.tensors.keys()].sort());
      assert.deepEqual(fromFile.metadata, fromBytes.metadata);
      const dtypes = Object.fromEntries(fromFile.dtypes);
      for (const [k, t] of fromFile.tensors) sameTensor(t, fromBytes.tensors.get(k) as Tensor, k);
      const again = parseSafetensors(
        serializeSafetensors(fromFile.tensors, { dtypes, metadata: fromFile.metadata }),
      );
      for (const [k, t] of fromFile.tensors) {
        const u = again.tensors.get(k) as Tensor;
        assert.equal(again.dtypes.get(k), fromFile.dtypes.get(k), `${k}: dtype`);
        // NaN != NaN under deepEqual of numbers; compare through Object.is
        assert.ok(
          t.data.every((v, i) => Object.is(v, u.data[i])),
          `${k}: values`,
        );
      }
    });
  }
});

describe('safetensors atomic write', () => {
  test('a successful write leaves only the target; a failing serialization leaves the target untouched', () => {
    const sub = join(dir, 'atomic');
    mkdirSync(sub);
    const target = join(sub, 'model.safetensors');
    writeSafetensors(target, { w: tensor([1, 2, 3]) });
    assert.deepEqual(readdirSync(sub), ['model.safetensors']);
    const before = readFileSync(target);
    const bad: Array<[string, () => void, RegExp]> = [
      [
        'NaN into I64',
        () => writeSafetensors(target, { w: tensor([1, Number.NaN]) }, { dtypes: { w: 'I64' } }),
        /value NaN .* I64/,
      ],
      [
        '300 into U8',
        () => writeSafetensors(target, { w: tensor([300], [1], 'int32') }, { dtypes: { w: 'U8' } }),
        /300 .* U8/,
      ],
      ['reserved name', () => writeSafetensors(target, { __metadata__: tensor([1]) }), /named __metadata__/],
      [
        'metadata value',
        () => writeSafetensors(target, { w: tensor([1]) }, { metadata: { n: 3 as unknown as string } }),
        /metadata 'n' must be a string/,
      ],
      [
        'unknown dtype',
        () => writeSafetensors(target, { w: tensor([1]) }, { dtypes: { w: 'F8' as SafetensorsDType } }),
        /unsupported dtype "F8"/,
      ],
      [
        'dtype for a missing tensor',
        () => writeSafetensors(target, { w: tensor([1]) }, { dtypes: { v: 'F16' } }),
        /'v', which is not among/,
      ],
    ];
    for (const [what, write, message] of bad) {
      assert.throws(write, (e: Error) => {
        assert.ok(e instanceof SafetensorsError, `${what}: ${e}`);
        assert.match(e.message, message, what);
        assert.ok(e.message.includes(target), `${what}: the message names the file`);
        return true;
      });
      assert.deepEqual(readFileSync(target), before, `${what}: target untouched`);
      assert.deepEqual(readdirSync(sub), ['model.safetensors'], `${what}: no temp file left`);
    }
    writeSafetensors(target, { w: tensor([4, 5]) });
    assert.deepEqual(Array.from(readSafetensors(target).tensors.get('w')?.data ?? []), [4, 5]);
    assert.deepEqual(readdirSync(sub), ['model.safetensors']);
  });
  test('a write that fails in the file system leaves no temp file', () => {
    const sub = join(dir, 'atomic-fs');
    mkdirSync(sub);
    // renaming a file over a directory fails after the temp file was written
    mkdirSync(join(sub, 'taken'));
    assert.throws(() => writeFileAtomic(join(sub, 'taken'), 'x'));
    assert.deepEqual(readdirSync(sub), ['taken']);
    assert.throws(() => writeFileAtomic(join(sub, 'missing', 'f'), 'x'), /ENOENT/);
  });
});

describe('safetensors errors name the file and the problem', () => {
  const ok = { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['short file', new Uint8Array(5), /file is 5 bytes, shorter than the 8-byte header length/],
    ['header length beyond file', craft(ok, 8, 1000n), /header length 1000 runs past the end of the file/],
    [
      'huge header length',
      craft(ok, 8, 2n ** 64n - 1n),
      /header length 18446744073709551615 exceeds the 100 MB limit/,
    ],
    ['header not JSON', craft('{"w": {', 8), /header is not valid JSON/],
    [
      'header not UTF-8',
      craft(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), 0),
      /header is not valid UTF-8$/,
    ],
    ['header an array', craft('[1, 2]', 0), /header must be a JSON object, got \[1, 2\]/],
    [
      'wrong dtype',
      craft({ w: { dtype: 'F8_E4M3', shape: [2], data_offsets: [0, 2] } }, 2),
      /tensor 'w' has unsupported dtype "F8_E4M3"/,
    ],
    [
      'inherited dtype name',
      craft({ w: { dtype: 'toString', shape: [1], data_offsets: [0, 1] } }, 1),
      /unsupported dtype "toString"/,
    ],
    [
      'negative shape',
      craft({ w: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, 8),
      /tensor 'w' has an invalid shape \[-2\]/,
    ],
    [
      'float shape',
      craft({ w: { dtype: 'F32', shape: [1.5], data_offsets: [0, 8] } }, 8),
      /invalid shape \[1.5\]/,
    ],
    [
      'huge shape',
      craft({ w: { dtype: 'F32', shape: [2 ** 60], data_offsets: [0, 8] } }, 8),
      /invalid shape/,
    ],
    [
      'shape not an array',
      craft({ w: { dtype: 'F32', shape: '2', data_offsets: [0, 8] } }, 8),
      /invalid shape "2"/,
    ],
    [
      'too many dims',
      craft({ w: { dtype: 'F32', shape: Array(65).fill(1), data_offsets: [0, 4] } }, 4),
      /at most 64/,
    ],
    [
      'shape * dtype != span',
      craft({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8),
      /shape \[3\] of F32 needs 12 bytes but data_offsets span 8/,
    ],
    [
      'enormous product of safe dims',
      craft({ w: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 8] } }, 8),
      /needs 4\.8\d*e\+24 bytes but data_offsets span 8/,
    ],
    [
      'offsets out of bounds',
      craft({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 8),
      /data \[0, 16\] runs past the data section \(8 bytes\)/,
    ],
    [
      'end before begin',
      craft({ w: { dtype: 'F32', shape: [0], data_offsets: [8, 4] } }, 8),
      /end before begin/,
    ],
    [
      'offsets not a pair',
      craft({ w: { dtype: 'F32', shape: [2], data_offsets: [0] } }, 8),
      /invalid data_offsets \[0\]/,
    ],
    [
      'negative offsets',
      craft({ w: { dtype: 'F32', shape: [2], data_offsets: [-8, 0] } }, 8),
      /invalid data_offsets/,
    ],
    [
      'overlapping tensors',
      craft(
        {
          a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
          b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
        },
        12,
      ),
      /tensors 'a' \[0, 8\] and 'b' \[4, 12\] overlap/,
    ],
    [
      'metadata non-string',
      craft({ __metadata__: { epoch: 3 }, ...ok }, 8),
      /__metadata__ 'epoch' must be a string, got 3/,
    ],
    [
      'metadata not an object',
      craft({ __metadata__: ['a'], ...ok }, 8),
      /__metadata__ must be an object of strings/,
    ],
    [
      'entry not an object',
      craft({ w: 5 }, 0),
      /tensor 'w' must be an object \{dtype, shape, data_offsets\}, got 5/,
    ],
    [
      'duplicated tensor key',
      craft(
        '{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
        8,
      ),
      /header repeats the key 'w'/,
    ],
    [
      'duplicated field, escaped spelling',
      craft('{"w":{"dtype":"F32","\\u0064type":"I32","shape":[1],"data_offsets":[0,4]}}', 4),
      /header repeats the key 'dtype'/,
    ],
  ];
  for (const [what, image, message] of cases) {
    test(what, () => {
      const p = tmpFile(image);
      for (const [reader, read] of [
        ['readSafetensors', () => readSafetensors(p)],
        ['parseSafetensors', () => parseSafetensors(image, p)],
      ] as const) {
        assert.throws(read, (e: Error) => {
          assert.ok(e instanceof SafetensorsError, `${reader}: ${e}`);
          assert.match(e.message, message, reader);
          assert.ok(e.message.startsWith(`safetensors ${p}: `), `${reader} names the file: ${e.message}`);
          return true;
        });
      }
    });
  }
  test('missing file and a directory', () => {
    const missing = join(dir, 'nope.safetensors');
    assert.throws(
      () => readSafetensors(missing),
      new RegExp(`safetensors ${missing}: cannot open \\(ENOENT\\)`),
    );
    assert.throws(() => readSafetensors(dir), /not a regular file/);
  });
  test('deep nesting is rejected before parsing; odd values give a short message, not a stack overflow', () => {
    const deep = `{"w":{"dtype":"F32","shape":${'['.repeat(1e6)}${']'.repeat(1e6)},"data_offsets":[0,0]}}`;
    assert.throws(() => parseSafetensors(craft(deep)), /header nests deeper than 16 levels/);
    const nested = `{"w":{"dtype":"F32","shape":${'['.repeat(10)}${']'.repeat(10)},"data_offsets":[0,0]}}`;
    assert.throws(() => parseSafetensors(craft(nested)), /invalid shape \[\[\.\.\.\]\]/);
    const longName = 'n'.repeat(100000);
    assert.throws(
      () => parseSafetensors(craft({ [longName]: 1 })),
      (e: Error) => e.message.length < 300,
    );
  });
  test('empty tensors own no bytes: they may sit anywhere, even inside another span', () => {
    const image = craft(
      {
        e: { dtype: 'F32', shape: [0, 5], data_offsets: [4, 4] },
        w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      },
      new Uint8Array(new Float32Array([1, 2]).buffer),
    );
    const back = parseSafetensors(image);
    assert.deepEqual(back.tensors.get('e')?.shape, [0, 5]);
    assert.deepEqual(Array.from(back.tensors.get('w')?.data ?? []), [1, 2]);
  });
  test('BOOL bytes other than 0/1 read as true (1)', () => {
    const back = parseSafetensors(
      craft({ m: { dtype: 'BOOL', shape: [3], data_offsets: [0, 3] } }, new Uint8Array([0, 7, 1])),
    );
    assert.deepEqual(Array.from(back.tensors.get('m')?.data ?? []), [0, 1, 1]);
  });
});
