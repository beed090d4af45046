/**
 * Where a ViT-B/16 inference forward spends its time, kernel by kernel (the inference twin of
 * scripts/profile_train_step.ts):
 *
 *   node --import tsx scripts/profile_inference.ts [--model vit_base_patch16_224] [--batch 8] [--runs 3] [--prepack]
 *
 * Random weights, eval mode, no gradients; --prepack packs the linear weights first as bench/vit_worker.ts
 * does (prepackForInference, native backend). Prints the best forward's wall time, then a second pass with
 * a timer around every kernel call: wall and process CPU time per kernel and the time outside kernels.
 */
import { parseArgs } from 'node:util';
import { getBackend } from '../src/backend/backend.js';
import { nativeStatus, prepackForInference } from '../src/backend/native.js';
import { manualSeed, noGrad, randn } from '../src/index.js';
import { createModel } from '../src/models/registry.js';
import { installKernelTimers } from './kernel_timers.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'vit_base_patch16_224' },
    batch: { type: 'string', default: '8' },
    runs: { type: 'string', default: '3' },
    prepack: { type: 'boolean', default: false },
  },
});
const batch = Number(values.batch);
const { stats, timing } = installKernelTimers();

manualSeed(0);
const model = createModel(values.model!);
model.eval();
if (values.prepack) prepackForInference(model);
const x = randn([batch, 3, 224, 224]);
const forward = () => noGrad(() => model.forward(x));
forward();
let best = Number.POSITIVE_INFINITY;
for (let i = 0; i < Number(values.runs); i++) {
  const t0 = performance.now();
  forward();
  best = Math.min(best, performance.now() - t0);
}
timing.on = true;
const t0 = performance.now();
forward();
const total = performance.now() - t0;
timing.on = false;
const inKernels = [...stats.values()].reduce((s, v) => s + v.ms, 0);
const isa = nativeStatus().loaded ? nativeStatus().isa : 'none';
process.stdout.write(
  `${values.model} batch ${batch}, backend ${getBackend()} (${isa})${values.prepack ? ', prepacked' : ''}: best forward ${best.toFixed(0)} ms = ${((1000 * batch) / best).toFixed(2)} images/s\n` +
    `timed pass ${total.toFixed(0)} ms: in kernels ${inKernels.toFixed(0)} ms, outside ${(total - inKernels).toFixed(0)} ms\n`,
);
for (const [name, s] of [...stats].sort((a, b) => b[1].ms - a[1].ms)) {
  process.stdout.write(
    `  ${name.padEnd(22)} ${s.ms.toFixed(1).padStart(8)} ms (${((100 * s.ms) / total).toFixed(1).padStart(4)}%) ${String(s.calls).padStart(5)} calls\n`,
  );
}
