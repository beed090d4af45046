/**
 * The training process the resume test kills: `tsx resume_child.ts OUT new|resume [pauseAtStep] [checkpointEvery]`.
 * With pauseAtStep it prints "PAUSED <step>" after that step (its checkpoint, if due, already
 * written) and blocks until killed; otherwise it prints "STEP <n>" as it goes and "DONE" at the end.
 */
import { runTiny } from './tiny.js';

const [outDir, mode, pause, every] = process.argv.slice(2);
const pauseAt = pause ? Number(pause) : -1;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

await runTiny(outDir, {
  resume: mode === 'resume',
  ...(every ? { checkpointEvery: Number(every) } : {}),
  onStep: ({ step }) => {
    process.stdout.write(`STEP ${step}\n`);
    if (step === pauseAt) {
      process.stdout.write(`PAUSED ${step}\n`);
      // Block the thread (not just the event loop) so nothing else happens before SIGKILL.
      Atomics.wait(sleeper, 0, 0, 60_000);
    }
  },
});
process.stdout.write('DONE\n');
