/**
 * glimpse's side of bench/train_step.ts, in its own process (its peak RSS is its own):
 * `--batch B --iterations I`. One step of the vit_fashion preset as the trainer runs it: forward,
 * cross-entropy with label smoothing 0.1, zeroGrad, backward, gradient-norm clip to 1, AdamW over the
 * weight-decay groups. Prints {imagesPerSecond, peakRssMB, parameters} as JSON: the best of I timed
 * steps after two warm-up steps, on random images and labels.
 */
import { parseArgs } from 'node:util';
import { manualSeed, randint, randn } from '../src/index.js';
import { createModel } from '../src/models/registry.js';
import { crossEntropy } from '../src/ops/loss.js';
import { AdamW } from '../src/optim/adam.js';
import { clipGradNorm_ } from '../src/optim/optimizer.js';
import { paramGroupsWeightDecay } from '../src/optim/param_groups.js';
import { getPreset } from '../src/train/presets.js';

const { values } = parseArgs({ options: { batch: { type: 'string' }, iterations: { type: 'string' } } });
const batch = Number(values.batch);
const iterations = Number(values.iterations);

const preset = getPreset('vit_fashion');
manualSeed(0);
const model = createModel(preset.model, { num_classes: 10, in_chans: 1, img_size: 28, ...preset.modelArgs });
model.train();
const optimizer = new AdamW(paramGroupsWeightDecay(model, { weightDecay: 0.05 }), { lr: preset.lr });
const x = randn([batch, 1, 28, 28]);
const y = randint(0, 10, [batch]);

function step(): number {
  const loss = crossEntropy(model.forward(x), y, { labelSmoothing: 0.1 });
  const value = loss.item();
  optimizer.zeroGrad();
  loss.backward();
  clipGradNorm_(model.parameters(), 1);
  optimizer.step();
  return value;
}

step();
step();
let best = Number.POSITIVE_INFINITY;
for (let i = 0; i < iterations; i++) {
  const t0 = performance.now();
  step();
  best = Math.min(best, performance.now() - t0);
}
console.log(
  JSON.stringify({
    imagesPerSecond: (1000 * batch) / best,
    peakRssMB: process.resourceUsage().maxRSS / 1024,
    parameters: model.numParameters(),
  }),
);
