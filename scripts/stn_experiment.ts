/**
 * Why the spatial transformer of `glimpse stn-demo` centers and zooms but does not turn items upright
 * (docs/stn/README.md). Two measurements on distorted Fashion-MNIST (12000 train / 2000 test, +-60
 * degrees, the demo's ST-CNN with the 'rts' transform):
 *
 *   node --import tsx scripts/stn_experiment.ts signal [epochs]
 *     trains the ST-CNN and, before training and after every epoch, correlates each test image's
 *     gradient step on the transformer's angle (-dL/d angle) with the rotation left in its output:
 *     positive means the classifier's loss pulls items toward upright.
 *   node --import tsx scripts/stn_experiment.ts probe [steps]
 *     trains the ST's localization net alone, supervised, to regress the true angle (MSE), and
 *     prints the test RMS error of the angle it predicts, overall and per class: how well this
 *     localization net can tell orientation when it is told the answer.
 */
import { loadDistortedFashionMnist } from '../src/data/distorted_fashion_mnist.js';
import type { DistortedDataset } from '../src/data/distorted_fashion_mnist.js';
import { F, manualSeed, optim } from '../src/index.js';
import { type SpatialTransformer, StnClassifier } from '../src/models/stn.js';
import { noGrad } from '../src/tensor/autograd.js';
import { Tensor } from '../src/tensor/tensor.js';
import { train } from '../src/train/trainer.js';

const CANVAS = 42;
const PLANE = CANVAS * CANVAS;

/** Images (B, 1, 42, 42), labels (B,) and true angles in radians (B,). */
function batchOf(
  dataset: DistortedDataset,
  indices: number[],
): { x: Tensor; labels: Tensor; angles: Float32Array } {
  const x = new Float32Array(indices.length * PLANE);
  const labels = new Float64Array(indices.length);
  const angles = new Float32Array(indices.length);
  indices.forEach((index, b) => {
    const sample = dataset.get(index);
    x.set(sample.image.data, b * PLANE);
    labels[b] = sample.label;
    angles[b] = (dataset.distortion(index).angle * Math.PI) / 180;
  });
  return {
    x: new Tensor(x, [indices.length, 1, CANVAS, CANVAS]),
    labels: new Tensor(labels, [indices.length]),
    angles,
  };
}

function model(): StnClassifier {
  return new StnClassifier({
    inputSize: [CANVAS, CANVAS],
    heads: 1,
    transform: 'rts',
    stOutputSize: 28,
    hidden: 48,
  });
}

/** corr(rotation left, -dL/d angle) over the test set and how often their signs agree. */
function angleSignal(net: StnClassifier, testSet: DistortedDataset): string {
  const st = net.st as SpatialTransformer;
  const { x, labels, angles } = batchOf(
    testSet,
    Array.from({ length: testSet.length }, (_, i) => i),
  );
  const params = noGrad(() => st.predictParams(x)).setRequiresGrad();
  const output = st.sample(x, st.gridFromParams(params).grid);
  // the classifier after the transformer, as StnClassifier.forwardFeatures runs it
  let y = F.relu(F.maxPool2d(net.conv1.forward(output), 2));
  y = F.relu(F.maxPool2d(net.conv2.forward(y), 2));
  const logits = net.forwardHead(F.relu(net.fc1.forward(F.flatten(y, 1))));
  F.crossEntropy(logits, labels, { reduction: 'sum' }).backward();
  net.zeroGrad();
  const g = (params.grad as Tensor).data;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  let agree = 0;
  for (let i = 0; i < testSet.length; i++) {
    const left = angles[i] - params.data[4 * i]; // 'rts' parameters are (angle, s, tx, ty)
    const step = -g[4 * i];
    sxy += left * step;
    sxx += left * left;
    syy += step * step;
    if (Math.sign(left) === Math.sign(step)) agree++;
  }
  return `corr(rotation left, -dL/d angle) ${(sxy / Math.sqrt(sxx * syy)).toFixed(3)}, signs agree ${((100 * agree) / testSet.length).toFixed(1)}%`;
}

async function signal(epochs: number): Promise<void> {
  const trainSet = await loadDistortedFashionMnist('train', { limit: 12000, seed: 0 });
  const testSet = await loadDistortedFashionMnist('test', { limit: 2000, seed: 1 });
  manualSeed(0);
  const net = model();
  console.log(`before training: ${angleSignal(net, testSet)}`);
  await train({
    model: net,
    train: trainSet,
    eval: testSet,
    epochs,
    batchSize: 32,
    lr: 2e-3,
    weightDecay: 1e-4,
    print: console.log,
    onEpoch: () => console.log(`  ${angleSignal(net, testSet)}`),
  });
}

async function probe(steps: number): Promise<void> {
  const trainSet = await loadDistortedFashionMnist('train', { limit: 12000, seed: 0 });
  const testSet = await loadDistortedFashionMnist('test', { limit: 2000, seed: 1 });
  manualSeed(0);
  const st = model().st as SpatialTransformer;
  const optimizer = new optim.AdamW(st.parameters(), { lr: 3e-3, weightDecay: 0 });
  const test = batchOf(
    testSet,
    Array.from({ length: testSet.length }, (_, i) => i),
  );
  const report = (step: number) =>
    noGrad(() => {
      const predicted = st.predictParams(test.x).data;
      const byClass: number[][] = testSet.classes.map(() => []);
      for (let i = 0; i < testSet.length; i++) {
        byClass[testSet.label(i)].push(((predicted[4 * i] - test.angles[i]) * 180) / Math.PI);
      }
      const rms = (a: number[]) => Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);
      console.log(
        `step ${step}: angle RMS error ${rms(byClass.flat()).toFixed(1)} deg; per class ${byClass.map((a, c) => `${testSet.classes[c]} ${rms(a).toFixed(0)}`).join(', ')}`,
      );
    });
  report(0);
  for (let step = 0; step < steps; step++) {
    const indices = Array.from({ length: 32 }, (_, i) => (step * 32 + i) % trainSet.length);
    const { x, angles } = batchOf(trainSet, indices);
    const angle = F.reshape(F.slice(st.predictParams(x), 1, 0, 1), [32]);
    const loss = F.mean(F.square(F.sub(angle, new Tensor(angles, [32]))));
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step();
    if ((step + 1) % 500 === 0) report(step + 1);
  }
}

const [what, n] = process.argv.slice(2);
if (what === 'signal') await signal(Number(n ?? 3));
else if (what === 'probe') await probe(Number(n ?? 1500));
else throw new Error('usage: scripts/stn_experiment.ts signal [epochs] | probe [steps]');
