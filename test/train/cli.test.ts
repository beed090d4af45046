/**
 * glimpse train / eval on bad input: each a one-line error, a non-zero exit, and nothing written or
 * overwritten; and the happy path on the committed slice (train, resume alone, eval).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
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
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { main } from '../../src/cli/main.js';
import { SLICE, snapshotDir } from './helpers/tiny.js';

const root = mkdtempSync(join(tmpdir(), 'glimpse-cli-train-'));
after(() => rmSync(root, { recursive: true, force: true }));
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'glimpse.js');

/** Runs the CLI in this process; returns the exit code and what it wrote. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const saved = [process.stdout.write, process.stderr.write];
  process.stdout.write = ((chunk: string) => out.push(String(chunk)) > 0) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => err.push(String(chunk)) > 0) as typeof process.stderr.write;
  try {
    const code = await main(args);
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    [process.stdout.write, process.stderr.write] = saved;
  }
}

const TINY_VIT = [
  '--model',
  'vit_tiny_patch16_224',
  '--model-args',
  '{"patch_size":7,"embed_dim":16,"depth":1,"num_heads":2}',
];
const SMALL_RUN = [
  ...TINY_VIT,
  '--dataset',
  SLICE,
  '--train-subset',
  '100',
  '--epochs',
  '1',
  '--batch-size',
  '25',
  '--no-progress',
];

function oneLine(stderr: string, pattern: RegExp): void {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line, got: ${stderr}`);
  assert.match(lines[0], pattern);
}

describe('glimpse train: bad input', () => {
  test('batch size 0 through the real binary: exit 1, one line, no output directory', () => {
    const out = join(root, 'zero');
    const r = spawnSync(process.execPath, [BIN, 'train', ...TINY_VIT, '--batch-size', '0', '--out', out], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 1);
    oneLine(r.stderr, /^glimpse: train: --batch-size must be a positive integer, got '0'$/);
    assert.equal(existsSync(out), false);
  });

  test('an IDX file with a wrong magic number or count', async () => {
    for (const [name, mutate, pattern] of [
      ['magic', (b: Buffer) => b.writeUInt32BE(0x00000901, 0), /wrong IDX magic number 0x00000901/],
      [
        'count',
        (b: Buffer) => b.writeUInt32BE(501, 4),
        /header says \[501, 28, 28\] .* but the file holds 392000; the file is truncated or corrupt/,
      ],
    ] as const) {
      const data = join(root, `idx-${name}`);
      mkdirSync(data);
      for (const f of readdirSync(SLICE)) copyFileSync(join(SLICE, f), join(data, f));
      const { gunzipSync } = await import('node:zlib');
      const raw = gunzipSync(readFileSync(join(SLICE, 'train-images-idx3-ubyte.gz')));
      mutate(raw);
      rmSync(join(data, 'train-images-idx3-ubyte.gz'));
      writeFileSync(join(data, 'train-images-idx3-ubyte'), raw);
      const out = join(root, `out-${name}`);
      const r = await cli(['train', ...TINY_VIT, '--dataset', data, '--out', out]);
      assert.equal(r.code, 1);
      oneLine(r.stderr, pattern);
      assert.equal(existsSync(out), false);
    }
  });

  test('an empty image folder', async () => {
    const empty = join(root, 'empty-folder');
    mkdirSync(join(empty, 'cats'), { recursive: true });
    const out = join(root, 'out-empty');
    const r = await cli(['train', ...TINY_VIT, '--dataset', empty, '--out', out]);
    assert.equal(r.code, 1);
    oneLine(
      r.stderr,
      /^glimpse: image folder .*empty-folder: no images found; expected .*\/<class>\/<image>/,
    );
    assert.equal(existsSync(out), false);
  });

  test('no model, a bad --model-args, an unknown preset', async () => {
    const out = join(root, 'out-none');
    oneLine(
      (await cli(['train', '--out', out])).stderr,
      /train: name a model with --model ID, --preset NAME \(vit_fashion, /,
    );
    oneLine(
      (await cli(['train', '-m', 'vit_tiny_patch16_224', '--model-args', '{bad', '--out', out])).stderr,
      /--model-args must be a JSON object/,
    );
    oneLine(
      (await cli(['train', '--preset', 'nope', '--out', out])).stderr,
      /unknown preset 'nope'; presets: vit_fashion/,
    );
    assert.equal(existsSync(out), false);
  });

  test('train, refuse to overwrite, refuse an incompatible resume, resume alone, eval', async () => {
    const out = join(root, 'run');
    const first = await cli(['train', ...SMALL_RUN, '--out', out]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(
      first.stdout,
      /^epoch 1\/1 {2}train loss .* eval loss .*\nfinal eval accuracy [\d.]+% \(best [\d.]+% at epoch 1\)\nweights: /,
    );
    const before = snapshotDir(out);

    const again = await cli(['train', ...SMALL_RUN, '--out', out]);
    assert.equal(again.code, 1);
    oneLine(again.stderr, /already holds a training run \(checkpoint\.safetensors\); pass --resume/);

    const other = await cli(['train', ...SMALL_RUN, '--batch-size', '20', '--resume', '--out', out]);
    assert.equal(other.code, 1);
    oneLine(
      other.stderr,
      /^glimpse: train --resume: the checkpoint in .* does not fit this run: batchSize was 25, now 20; resume with the original settings/,
    );

    const wide = await cli([
      'train',
      ...SMALL_RUN,
      '--model-args',
      '{"patch_size":7,"embed_dim":24,"depth":1,"num_heads":2}',
      '--resume',
      '--out',
      out,
    ]);
    assert.equal(wide.code, 1);
    oneLine(wide.stderr, /modelArgs was .*"embed_dim":16.*, now .*"embed_dim":24/);
    assert.deepEqual(snapshotDir(out), before, 'nothing in the run directory changed');

    // --resume alone takes the settings from the checkpoint; the run is complete, so it only reports.
    const resumed = await cli(['train', '--resume', '--out', out, '--no-progress']);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout, /final eval accuracy/);
    assert.deepEqual(snapshotDir(out), before, 'a finished run is left as it was');

    const ev = await cli(['eval', '--weights', join(out, 'model.safetensors'), '--dataset', SLICE, '--json']);
    assert.equal(ev.code, 0, ev.stderr);
    const report = JSON.parse(ev.stdout);
    assert.equal(report.count, 200);
    const lastEpoch = readFileSync(join(out, 'log.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((r) => r.type === 'epoch')
      .at(-1);
    assert.ok(
      Math.abs(report.accuracy - lastEpoch.eval_acc) < 1e-12,
      'eval reproduces the last epoch evaluation',
    );
    assert.equal(report.perClass.length, 10);

    const bad = await cli(['eval', '--weights', join(out, 'log.jsonl'), '--dataset', SLICE]);
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr.trim().split('\n').length, 1);
  });
});
