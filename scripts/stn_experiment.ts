/**
 * Why the spatial transformer of `glimpse stn-demo` centers and zooms but does not turn items upright
 * (docs/stn/README.md). Two measurements on distorted Fashion-MNIST (12000 train / 2000 test, +-60
 * degrees, the demo's ST-CNN with the 'rts' transform):
 *
 *   node --import tsx scripts/stn_experiment.ts signal [epochs]
 *     trains the ST-CNN and, before training and after every epoch, correlates each test image's
 *     gradient step on the transformer's angle (-dL/d angle) with the rotation left in its output:
 *     positive means the classifier's loss pulls items toward upright.
 *   node --import tsx scripts/stn_experiment.ts probe [steps] [canvas|crop] [conv|moments|moments-softmax]
 *     trains the ST's localization net alone, supervised, to regress the true angle (MSE), and
 *     prints the test RMS error of the angle it predicts, overall and per class: how well this
 *     localization net can tell orientation when it is told the answer. 'crop' gives it instead the
 *     28x28 crop that centers and scales each item exactly (its rotation left in), as the second
 *     stage of the series ST-CNN sees once the first stage is perfect. 'moments' swaps the demo's
 *     conv localization for the coordinate-aware MomentLocalization (relu or softmax weighting).
 */
import { loadDistortedFashionMnist } from '../src/data/distorted_fashion_mnist.js';
import type { DistortedDataset } from '../src/data/distorted_fashion_mnist.js';
import { F, manualSeed, optim } from '../src/index.js';
import { SpatialTransformer, StnClassifier } from '../src/models/stn.js';
import { noGrad } from '../src/tensor/autograd.js';
import { Tensor } from '../src/tensor/tensor.js';
import { train } from '../src/train/trainer.js';

const CANVAS = 42;
const PLANE = CANVAS * CANVAS;

/**
 * Images (B, 1, 42, 42), labels (B,), true angles in radians (B,) and the thetas (B, 6) of the crops
 * that center and scale each item exactly.
 */
function batchOf(
  dataset: DistortedDataset,
  indices: number[],
): { x: Tensor; labels: Tensor; angles: Float32Array; crops: Tensor } {
  const x = new Float32Array(indices.length * PLANE);
  const labels = new Float64Array(indices.length);
  const angles = new Float32Array(indices.length);
  const crops = new Float32Array(indices.length * 6);
  indices.forEach((index, b) => {
    const sample = dataset.get(index);
    x.set(sample.image.data, b * PLANE);
    labels[b] = sample.label;
    const d = dataset.distortion(index);
    angles[b] = (d.angle * Math.PI) / 180;
    const k = (d.scale * 28) / CANVAS;
    crops.set([k, 0, (2 * d.cx + 1) / CANVAS - 1, 0, k, (2 * d.cy + 1) / CANVAS - 1], 6 * b);
  });
  return {
    x: new Tensor(x, [indices.length, 1, CANVAS, CANVAS]),
    labels: new Tensor(labels, [indices.length]),
    angles,
    crops: new Tensor(crops, [indices.length, 6]),
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

type ProbeNet = 'conv' | 'moments' | 'moments-softmax';

async function probe(steps: number, view: 'canvas' | 'crop', net: ProbeNet): Promise<void> {
  const trainSet = await loadDistortedFashionMnist('train', { limit: 12000, seed: 0 });
  const testSet = await loadDistortedFashionMnist('test', { limit: 2000, seed: 1 });
  manualSeed(0);
  // the series ST-CNN's second stage: the same localization net at full resolution on a 28x28 crop
  const size = view === 'crop' ? 28 : CANVAS;
  const st =
    net !== 'conv'
      ? new SpatialTransformer({
          inChannels: 1,
          inputSize: [size, size],
          transform: 'rts',
          localization: 'moments',
          localizationOptions: { weighting: net === 'moments' ? 'relu' : 'softmax' },
        })
      : view === 'crop'
        ? new SpatialTransformer({ inChannels: 1, inputSize: [28, 28], transform: 'rts' })
        : (model().st as SpatialTransformer);
  console.log(`${net} localization on the ${view}: ${st.localization.numParameters()} parameters`);
  const cropper = new SpatialTransformer({ inChannels: 1, inputSize: [CANVAS, CANVAS], outputSize: 28 });
  const input = (b: { x: Tensor; crops: Tensor }) =>
    view === 'crop' ? noGrad(() => cropper.sample(b.x, cropper.gridFromParams(b.crops).grid)) : b.x;
  const optimizer = new optim.AdamW(st.parameters(), { lr: 3e-3, weightDecay: 0 });
  const test = batchOf(
    testSet,
    Array.from({ length: testSet.length }, (_, i) => i),
  );
  const testInput = input(test);
  const report = (step: number) =>
    noGrad(() => {
      const predicted = st.predictParams(testInput).data;
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
    const batch = batchOf(trainSet, indices);
    const angles = batch.angles;
    const angle = F.reshape(F.slice(st.predictParams(input(batch)), 1, 0, 1), [32]);
    const loss = F.mean(F.square(F.sub(angle, new Tensor(angles, [32]))));
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step();
    if ((step + 1) % 500 === 0) report(step + 1);
  }
}

const [what, n, view, net] = process.argv.slice(2);
const NETS: ProbeNet[] = ['conv', 'moments', 'moments-softmax'];
if (what === 'signal') await signal(Number(n ?? 3));
else if (
  what === 'probe' &&
  (view === undefined || view === 'canvas' || view === 'crop') &&
  (net === undefined || NETS.includes(net as ProbeNet))
)
  await probe(Number(n ?? 1500), view ?? 'canvas', (net as ProbeNet | undefined) ?? 'conv');
else
  throw new Error(
    'usage: scripts/stn_experiment.ts signal [epochs] | probe [steps] [canvas|crop] [conv|moments|moments-softmax]',
  );
