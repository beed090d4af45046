/**
 * Where a segmentation training step's time goes (forward, backward, optimizer) for a preset of
 * src/segment/train.ts on a random batch, with the time inside each kernel of the active backend.
 *
 *   node --import tsx scripts/profile_segment_step.ts [fashion2d|shapes3d] [--steps 3] [--batch N] [--config JSON]
 *
 * Time not inside any kernel is the JS around them. The machine is shared: run it twice, and read
 * the CPU times (process CPU, all threads), which neighbours disturb far less than the wall times.
 */
import '../src/backend/native.js';
import { parseArgs } from 'node:util';
import { getBackend } from '../src/backend/backend.js';
import { manualSeed, randint, randn } from '../src/index.js';
import { AdamW } from '../src/optim/adam.js';
import { diceCeLoss } from '../src/segment/losses.js';
import { createSegmentationModel, modelInputSize } from '../src/segment/model.js';
import { getSegmentPreset } from '../src/segment/train.js';
import { installKernelTimers } from './kernel_timers.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { steps: { type: 'string', default: '3' }, batch: { type: 'string' }, config: { type: 'string' } },
});
const preset = getSegmentPreset(positionals[0] ?? 'shapes3d');
const { stats, timing } = installKernelTimers();
manualSeed(0);
const config = { ...preset.modelConfig, ...(values.config ? JSON.parse(values.config) : {}) };
const model = createSegmentationModel(preset.model, config);
const B = values.batch ? Number(values.batch) : preset.batchSize;
const spatial = modelInputSize(model);
const inCh = (config.inChans ?? config.inChannels) as number;
const classes = (config.numClasses ?? config.outChannels) as number;
const x = randn([B, inCh, ...spatial]);
const y = randint(0, classes, [B, ...spatial]);
const opt = new AdamW(model.parameters(), { lr: 1e-3 });
model.train();
const phases = { forward: 0, backward: 0, optimizer: 0 };
// Process CPU time as well: on a shared machine the wall time mostly measures the neighbours.
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
let cpuTotal = 0;
const steps = Number(values.steps);
for (let s = 0; s <= steps; s++) {
  timing.on = s > 0;
  const c0 = cpuMs();
  const t0 = performance.now();
  const loss = diceCeLoss(model.forward(x), y, preset.loss);
  const t1 = performance.now();
  opt.zeroGrad();
  loss.backward();
  const t2 = performance.now();
  opt.step();
  const t3 = performance.now();
  if (s > 0) {
    phases.forward += t1 - t0;
    phases.backward += t2 - t1;
    phases.optimizer += t3 - t2;
    cpuTotal += cpuMs() - c0;
  }
}
const total = phases.forward + phases.backward + phases.optimizer;
console.log(
  `${preset.model} batch ${B} ${spatial.join('x')} backend ${getBackend().name}: ${(total / steps).toFixed(0)} ms/step (${((B * steps * 1000) / total).toFixed(2)} samples/s); forward ${(phases.forward / steps).toFixed(0)}, backward ${(phases.backward / steps).toFixed(0)}, optimizer ${(phases.optimizer / steps).toFixed(0)} ms; ${(cpuTotal / steps).toFixed(0)} CPU ms/step`,
);
let inKernels = 0;
for (const [name, s] of [...stats].sort((a, b) => b[1].cpuMs - a[1].cpuMs).slice(0, 15)) {
  inKernels += s.cpuMs;
  console.log(
    `  ${name.padEnd(24)} ${(s.cpuMs / steps).toFixed(1).padStart(8)} CPU ms ${(s.ms / steps).toFixed(1).padStart(8)} ms ${String(s.calls / steps).padStart(6)} calls`,
  );
}
console.log(`  outside the top kernels: ${((cpuTotal - inKernels) / steps).toFixed(0)} CPU ms/step`);
