/** `glimpse saliency` end to end: the files it writes, --json, --search-array, and its one-line errors. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { runCli } from '../helpers/cli.js';
import { searchArray, writeImage } from '../../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'glimpse-saliency-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const colorPng = join(dir, 'color.png');
const orientationPng = join(dir, 'orientation.png');

before(async () => {
  await writeImage(colorPng, searchArray({ kind: 'color', seed: 5, size: 200 }).image);
  await writeImage(orientationPng, searchArray({ kind: 'orientation', seed: 6, size: 160 }).image);
});

const glimpse = runCli;

const OUTPUTS = [
  'conspicuity_color.png',
  'conspicuity_intensity.png',
  'conspicuity_orientation.png',
  'panel.png',
  'saliency.png',
  'scanpath.json',
  'scanpath.png',
];

describe('glimpse saliency', () => {
  test('one image: the maps, the scanpath picture and JSON, at the image size; --json prints the same', async () => {
    const out = join(dir, 'one');
    const r = spawnSync(
      process.execPath,
      [
        new URL('../../bin/glimpse.js', import.meta.url).pathname,
        'saliency',
        colorPng,
        '--out',
        out,
        '--fixations',
        '3',
        '--json',
      ],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(readdirSync(out).sort(), OUTPUTS);
    const json = JSON.parse(readFileSync(join(out, 'scanpath.json'), 'utf8'));
    assert.deepEqual(JSON.parse(r.stdout), json);
    assert.equal(json.fixations.length, 3);
    assert.deepEqual([json.width, json.height, json.scale], [200, 200, 16]);
    for (const f of json.fixations) {
      assert.ok(f.x >= 0 && f.x < 200 && f.y >= 0 && f.y < 200 && f.t > 0);
      assert.ok(['intensity', 'color', 'orientation'].includes(f.feature));
    }
    for (const name of ['saliency.png', 'scanpath.png', 'conspicuity_color.png']) {
      const meta = await sharp(join(out, name)).metadata();
      assert.deepEqual([meta.width, meta.height], [200, 200], name);
    }
  });

  test('several images: one folder each; --bias and --max-size apply', async () => {
    const out = join(dir, 'many');
    const r = await glimpse([
      'saliency',
      colorPng,
      orientationPng,
      '--out',
      out,
      '--bias',
      'orientation=2,color.red=3',
      '--max-size',
      '100',
    ]);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(readdirSync(out).sort(), ['color', 'orientation']);
    assert.deepEqual(readdirSync(join(out, 'orientation')).sort(), OUTPUTS);
    const json = JSON.parse(readFileSync(join(out, 'color', 'scanpath.json'), 'utf8'));
    assert.deepEqual(json.bias, { orientation: 2, 'color.red': 3 });
    const meta = await sharp(join(out, 'orientation', 'scanpath.png')).metadata();
    assert.deepEqual([meta.width, meta.height], [100, 100]);
  });

  test('--search-array: the stimulus, its targets, and the first fixation on the singleton', async () => {
    const out = join(dir, 'array');
    const r = await glimpse(['saliency', '--search-array', 'color', '--seed', '3', '--out', out]);
    assert.equal(r.code, 0, r.err);
    assert.ok(existsSync(join(out, 'stimulus.png')));
    const json = JSON.parse(readFileSync(join(out, 'scanpath.json'), 'utf8'));
    const [target] = json.targets;
    const [first] = json.fixations;
    assert.ok(Math.hypot(first.x - target.x, first.y - target.y) < 40, JSON.stringify({ target, first }));
    assert.equal(first.feature, 'color');
  });

  test('odd images: 1x1, gray, gray + alpha, RGBA, 16-bit, a 3000x20 strip', async () => {
    const raw = (w: number, h: number, channels: 1 | 2 | 3 | 4) =>
      sharp(Buffer.from(Uint8Array.from({ length: w * h * channels }, (_, i) => (i * 37) % 256)), {
        raw: { width: w, height: h, channels },
      });
    const files: [string, ReturnType<typeof sharp>][] = [
      ['one.png', raw(1, 1, 3)],
      ['gray.png', raw(40, 30, 1)],
      ['gray_alpha.png', raw(40, 30, 2)],
      ['rgba.png', raw(33, 47, 4)],
      ['deep.png', raw(40, 30, 3).toColourspace('rgb16')],
      ['strip.png', raw(3000, 20, 3)],
    ];
    for (const [name, img] of files) await img.png().toFile(join(dir, name));
    const out = join(dir, 'odd');
    const r = await glimpse([
      'saliency',
      ...files.map(([name]) => join(dir, name)),
      '--out',
      out,
      '--outputs',
      'json',
    ]);
    assert.equal(r.code, 0, r.err);
    for (const [name] of files) {
      const json = JSON.parse(readFileSync(join(out, name.replace('.png', ''), 'scanpath.json'), 'utf8'));
      const meta = await sharp(join(dir, name)).metadata();
      assert.deepEqual([json.width, json.height], [meta.width, meta.height], name);
      for (const f of json.fixations)
        assert.ok(f.x >= 0 && f.x < json.width && f.y >= 0 && f.y < json.height, name);
    }
  });

  test('bad input: one line, exit 1, nothing written', async () => {
    const fake = join(dir, 'fake.png');
    writeFileSync(fake, 'not an image');
    const blocker = join(dir, 'a-file');
    writeFileSync(blocker, 'x');
    const cases: [string[], RegExp][] = [
      [['saliency', fake, '--out', join(dir, 'bad1')], /fake\.png is not a readable image/],
      [['saliency', join(dir, 'missing.png'), '--out', join(dir, 'bad2')], /missing\.png is not a file/],
      [['saliency', colorPng, '--out', join(blocker, 'sub')], /cannot write to .*a-file\/sub \(ENOTDIR\)/],
      [['saliency', colorPng, '--out', join(dir, 'bad3'), '--bias', 'colour=2'], /unknown key 'colour'/],
      [
        ['saliency', colorPng, '--out', join(dir, 'bad4'), '--fixations', 'many'],
        /--fixations many is invalid/,
      ],
      [
        ['saliency', '--search-array', 'shape', '--out', join(dir, 'bad5')],
        /--search-array shape is not one of/,
      ],
      [['saliency', colorPng, fake, '--out', join(dir, 'bad6')], /fake\.png is not a readable image/],
    ];
    for (const [args, message] of cases) {
      const r = await glimpse(args);
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.err, message);
      assert.equal(r.err.trim().split('\n').length, 1, r.err);
    }
    for (const name of ['bad1', 'bad2', 'bad3', 'bad4', 'bad5', 'bad6'])
      assert.ok(!existsSync(join(dir, name)), name);
    assert.ok(!existsSync(join(blocker, 'sub')));
  });
});
