/**
 * Where a training step's time goes: forward, backward, gradient clip and optimizer step of a
 * Fashion-MNIST preset on a random batch, with the time inside each kernel of the active backend.
 *
 *   node --import tsx scripts/profile_train_step.ts [PRESET...] [--batch 128] [--steps 5] [--json FILE]
 *     [--args '{"embed_dim": 96}']   (architecture overrides on top of each preset's)
 *
 * Time not inside any kernel is the JS around them (graph bookkeeping, allocation, ops that loop in
 * JS). Add --cpu-prof to node for a function-level profile. The machine is shared: run it twice.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { getBackend } from '../src/backend/backend.js';
import { nativeStatus } from '../src/backend/native.js';
import { manualSeed, randint, randn } from '../src/index.js';
import { createModel } from '../src/models/registry.js';
import { crossEntropy } from '../src/ops/loss.js';
import { AdamW } from '../src/optim/adam.js';
import { clipGradNorm_ } from '../src/optim/optimizer.js';
import { paramGroupsWeightDecay } from '../src/optim/param_groups.js';
import { getPreset } from '../src/train/presets.js';
import { installKernelTimers } from './kernel_timers.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    batch: { type: 'string', default: '128' },
    steps: { type: 'string', default: '5' },
    json: { type: 'string' },
    args: { type: 'string' },
  },
});
const batchSize = Number(values.batch);
const steps = Number(values.steps);
const extraArgs = values.args ? (JSON.parse(values.args) as Record<string, unknown>) : {};
const presets = positionals.length ? positionals : ['vit_fashion', 'resnet_fashion', 'convmixer_fashion'];

// Per-kernel wall and CPU time (all threads of the process; on a shared machine the CPU time is the
// steadier figure): every entry of the resolved kernel table is wrapped in a timer, switched on only
// for the breakdown pass, since reading the CPU clock around ~300 calls a step costs time of its own.
const { stats: kernelMs, timing } = installKernelTimers();

const results: Record<string, unknown> = {};
for (const preset of presets) {
  const recipe = getPreset(preset);
  const sized = /vit|deit|mixer_b/.test(recipe.model);
  manualSeed(0);
  const model = createModel(recipe.model, {
    num_classes: 10,
    in_chans: 1,
    ...(sized ? { img_size: 28 } : {}),
    ...recipe.modelArgs,
    ...extraArgs,
  });
  const params = model.parameters().reduce((n, p) => n + p.size, 0);
  const optimizer = new AdamW(paramGroupsWeightDecay(model, { weightDecay: 0.05 }), { lr: 1e-3 });
  const x = randn([batchSize, 1, 28, 28]);
  const y = randint(0, 10, [batchSize]);
  model.train();
  const phases = { forward: 0, backward: 0, clip: 0, optimizer: 0 };
  const run = () => {
    const t0 = performance.now();
    const loss = crossEntropy(model.forward(x), y, { labelSmoothing: 0.1 });
    loss.item();
    const t1 = performance.now();
    optimizer.zeroGrad();
    loss.backward();
    const t2 = performance.now();
    clipGradNorm_(model.parameters(), 1);
    const t3 = performance.now();
    optimizer.step();
    const t4 = performance.now();
    return [t1 - t0, t2 - t1, t3 - t2, t4 - t3];
  };
  run(); // warm-up: JIT, optimizer state
  // The headline figures: plain steps, no timers.
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  for (let s = 0; s < steps; s++) {
    const [f, b, c, o] = run();
    phases.forward += f;
    phases.backward += b;
    phases.clip += c;
    phases.optimizer += o;
  }
  const total = performance.now() - start;
  const cpu = process.cpuUsage(cpuStart);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  // The breakdown: the same steps again with every kernel call timed.
  kernelMs.clear();
  timing.on = true;
  const timedCpuStart = process.cpuUsage();
  const timedStart = performance.now();
  for (let s = 0; s < steps; s++) run();
  const timedTotal = performance.now() - timedStart;
  const timedCpu = process.cpuUsage(timedCpuStart);
  const timedCpuMs = (timedCpu.user + timedCpu.system) / 1000;
  timing.on = false;
  const inKernels = [...kernelMs.values()].reduce((a, k) => a + k.ms, 0);
  const inKernelsCpu = [...kernelMs.values()].reduce((a, k) => a + k.cpuMs, 0);
  const perStep = (ms: number) => ms / steps;
  console.log(
    `\n${preset} (${recipe.model} ${JSON.stringify({ ...recipe.modelArgs, ...extraArgs })}, ${(params / 1e6).toFixed(2)}M params), batch ${batchSize}, backend ${getBackend()}`,
  );
  console.log(
    `  step ${perStep(total).toFixed(0)} ms = ${(total / steps / batchSize).toFixed(2)} ms/image = ${((1000 * steps * batchSize) / total).toFixed(0)} images/s`,
  );
  console.log(
    `  process CPU time ${(cpuMs / steps / batchSize).toFixed(2)} ms/image (all threads; ${(cpuMs / total).toFixed(2)} cores busy on average)`,
  );
  console.log(
    `  forward ${perStep(phases.forward).toFixed(0)} ms, backward ${perStep(phases.backward).toFixed(0)} ms, clip ${perStep(phases.clip).toFixed(1)} ms, optimizer ${perStep(phases.optimizer).toFixed(1)} ms`,
  );
  console.log(
    `  timed pass: in kernels ${perStep(inKernels).toFixed(0)} ms (CPU ${perStep(inKernelsCpu).toFixed(0)} ms), outside them ${perStep(timedTotal - inKernels).toFixed(0)} ms (CPU ${perStep(timedCpuMs - inKernelsCpu).toFixed(0)} ms, timers included)`,
  );
  const sorted = [...kernelMs.entries()].sort((a, b) => b[1].cpuMs - a[1].cpuMs);
  for (const [name, k] of sorted.slice(0, 14)) {
    console.log(
      `    ${name.padEnd(22)} CPU ${perStep(k.cpuMs).toFixed(1).padStart(7)} ms/step (${((100 * k.cpuMs) / timedCpuMs).toFixed(1).padStart(4)}%)  wall ${perStep(k.ms).toFixed(1).padStart(7)} ms  ${(k.calls / steps).toFixed(0).padStart(5)} calls/step`,
    );
  }
  results[preset] = {
    model: recipe.model,
    params,
    batchSize,
    msPerStep: perStep(total),
    msPerImage: total / steps / batchSize,
    cpuMsPerImage: cpuMs / steps / batchSize,
    phases: Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, perStep(v)])),
    kernels: Object.fromEntries(
      sorted.map(([n, k]) => [
        n,
        { msPerStep: perStep(k.ms), cpuMsPerStep: perStep(k.cpuMs), calls: k.calls / steps },
      ]),
    ),
  };
}
const status = nativeStatus();
console.log(`\nnative: ${JSON.stringify(status)}`);
if (values.json) writeFileSync(values.json, `${JSON.stringify({ native: status, results }, null, 2)}\n`);
