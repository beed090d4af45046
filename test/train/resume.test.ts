/**
 * kill -9 at any moment, resume, same result: a child process trains the tiny model on the committed
 * slice (mixup, EMA, clipping, warmup and dropout all on), is SIGKILLed mid-epoch, between an epoch's
 * last step and its evaluation, and at a random moment (checkpointing every step, so likely mid-write),
 * and resumes each time; its final weights, EMA and epoch records must equal those of an
 * uninterrupted run bit for bit.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readSafetensors } from '../../src/io/safetensors.js';
import { readTrainingCheckpoint } from '../../src/train/checkpoint.js';
import { type EpochRecord, readLog } from '../../src/train/log.js';
import { runTiny } from './helpers/tiny.js';

const root = mkdtempSync(join(tmpdir(), 'glimpse-resume-'));
after(() => rmSync(root, { recursive: true, force: true }));
const CHILD = join(import.meta.dirname, 'helpers', 'resume_child.ts');

interface ChildRun {
  child: ChildProcess;
  /** Resolves with the exit code (null when killed) and the signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  /** Resolves on the first stdout line matching the predicate. */
  waitFor(pred: (line: string) => boolean): Promise<string>;
}

function startChild(args: string[]): ChildRun {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], {
    env: { ...process.env, GLIMPSE_BACKEND: 'js' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  const waiters: Array<[(l: string) => boolean, (l: string) => void]> = [];
  let buffer = '';
  child.stdout!.on('data', (d) => {
    buffer += d;
    let nl = buffer.indexOf('\n');
    while (nl >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      for (const w of [...waiters]) {
        if (w[0](line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w[1](line);
        }
      }
      nl = buffer.indexOf('\n');
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>(
    (resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stderr })),
  );
  return {
    child,
    exited,
    waitFor: (pred) =>
      Promise.race([
        new Promise<string>((resolve) => waiters.push([pred, resolve])),
        exited.then((e) => {
          throw new Error(
            `child exited (${e.code ?? e.signal}) before the expected output: ${e.stderr.split('\n').slice(-5).join(' | ')}`,
          );
        }),
      ]),
  };
}

function epochRecords(dir: string): EpochRecord[] {
  return readLog(join(dir, 'log.jsonl')).filter((r): r is EpochRecord => r.type === 'epoch');
}

/** What must not depend on interruptions: everything but timings and machine readings. */
function stripTimings(r: EpochRecord) {
  const { time_s: _t, images_per_s: _i, data_wait_s: _d, cpu_s: _c, load_avg: _l, ...rest } = r;
  return rest;
}

test('SIGKILL mid-epoch, at an epoch end and mid-write, resume each time: bit-identical to an uninterrupted run', {
  timeout: 120_000,
}, async () => {
  const reference = join(root, 'reference');
  await runTiny(reference);

  const out = join(root, 'killed');
  // 1. Killed deterministically mid-epoch: paused after step 15 of 30 (epoch 2, batch 5); the last
  //    checkpoint is from step 12.
  const first = startChild([out, 'new', '15']);
  await first.waitFor((l) => l === 'PAUSED 15');
  first.child.kill('SIGKILL');
  assert.equal((await first.exited).signal, 'SIGKILL');
  const ckpt = readTrainingCheckpoint(join(out, 'checkpoint.safetensors'));
  assert.deepEqual([ckpt.position.epoch, ckpt.position.batch, ckpt.position.step], [1, 2, 12]);

  // 2. Resumed and killed right after the last step of epoch 2, whose checkpoint (step 20) is
  //    written but whose evaluation and epoch record are not: the resumed epoch has no batches left.
  const second = startChild([out, 'resume', '20']);
  await second.waitFor((l) => l === 'PAUSED 20');
  second.child.kill('SIGKILL');
  await second.exited;
  assert.deepEqual(readTrainingCheckpoint(join(out, 'checkpoint.safetensors')).position.batch, 10);

  // 3. Resumed, checkpointing after every step, and killed at an arbitrary moment (often mid-write).
  const third = startChild([out, 'resume', '', '1']);
  const killAt = 21 + Math.floor(Math.random() * 8);
  await third.waitFor((l) => l === `STEP ${killAt}`);
  third.child.kill('SIGKILL');
  const exit = await third.exited;
  assert.equal(exit.signal, 'SIGKILL', `the third run ended on its own: ${exit.stderr}`);
  // Whatever the moment, the checkpoint on disk is whole.
  const mid = readTrainingCheckpoint(join(out, 'checkpoint.safetensors'));
  assert.ok(mid.position.step >= 20 && mid.position.step <= 30, `checkpoint at step ${mid.position.step}`);

  // 4. Resumed to the end.
  const last = startChild([out, 'resume']);
  const done = await last.exited;
  assert.equal(done.code, 0, done.stderr);

  assert.deepEqual(
    readdirSync(out).filter((f) => f.endsWith('.tmp')),
    [],
    'no temp files left behind',
  );
  for (const file of ['model.safetensors', 'model_ema.safetensors']) {
    const a = readSafetensors(join(reference, file)).tensors;
    const b = readSafetensors(join(out, file)).tensors;
    assert.deepEqual([...b.keys()], [...a.keys()]);
    for (const [k, t] of a) assert.deepEqual(b.get(k)!.data, t.data, `${file} ${k} differs`);
  }
  assert.deepEqual(
    readFileSync(join(out, 'checkpoint.safetensors')).length,
    readFileSync(join(reference, 'checkpoint.safetensors')).length,
  );
  const expected = epochRecords(reference).map(stripTimings);
  assert.equal(expected.length, 3);
  assert.deepEqual(epochRecords(out).map(stripTimings), expected);
  const steps = readLog(join(out, 'log.jsonl'))
    .filter((r) => r.type === 'step')
    .map((r) => r.step);
  assert.deepEqual(steps, [5, 10, 15, 20, 25, 30], 'each logged step exactly once');
  assert.ok(existsSync(join(out, 'curves.svg')));
});
