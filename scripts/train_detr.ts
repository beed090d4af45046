/**
 * Trains DETR on the Fashion-MNIST detection set (DETR_FASHION_MNIST preset) and evaluates COCO-style
 * AP on its test split.
 *
 *   npx tsx scripts/train_detr.ts [--minutes 25 | --steps 2400] [--pretrain-steps 800] [--batch 16]
 *       [--lr 4e-4] [--backbone-lr-scale 0.25] [--eval-images 2000] [--out runs/detr_fashion]
 *       [--figures docs/detection]
 *
 * With --minutes the detector trains for that long (after pretraining) and the cosine schedule runs
 * on the fraction of that time spent, so a busy machine gets fewer steps, not a cut-off schedule.
 *
 * Two phases, as DETR itself starts from a pretrained backbone: (1) the ResNet trunk with trainable
 * batch norm learns to classify single items on 32x32 canvases; (2) its weights (batch-norm
 * statistics included) move into DETR's frozen-BN trunk and the whole detector trains with the set
 * loss. Writes model.safetensors, config.json, preprocessor_config.json, metrics.json and log.jsonl to
 * --out, and per-query attention figures to --figures.
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { F, getBackend, manualSeed, nn, noGrad, optim, writeSafetensors } from '../src/index.js';
import { FashionDetection, stackImages, toDetrTarget } from '../src/data/fashion_detection.js';
import { FASHION_MNIST_CLASSES, loadFashionMnist } from '../src/data/fashion_mnist.js';
import { writeFileAtomic } from '../src/io/safetensors.js';
import {
  DETR_FASHION_MNIST,
  DetrForObjectDetection,
  DetrResNetBackbone,
  detrLoss,
  postProcessDetections,
  queryAttentionMaps,
} from '../src/models/detr.js';
import { detrConfigToHf } from '../src/models/detr_checkpoint.js';
import { Tensor } from '../src/tensor/tensor.js';
import { type Box, meanAveragePrecision } from '../src/vision/average_precision.js';
import { detectionFigure } from '../src/vision/detection_figure.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const minutes = Number(arg('minutes', '0'));
const steps = minutes > 0 ? Number.POSITIVE_INFINITY : Number(arg('steps', '2400'));
const pretrainSteps = Number(arg('pretrain-steps', '800'));
const batch = Number(arg('batch', '16'));
const baseLr = Number(arg('lr', '4e-4'));
const backboneLrScale = Number(arg('backbone-lr-scale', '0.25'));
const evalImages = Number(arg('eval-images', '2000'));
const seed = Number(arg('seed', '0'));
const outDir = arg('out', 'runs/detr_fashion');
const figuresDir = arg('figures', 'docs/detection');
mkdirSync(outDir, { recursive: true });
manualSeed(seed);
const started = Date.now();
const elapsed = () => (Date.now() - started) / 1000;
const logPath = join(outDir, 'log.jsonl');
writeFileSync(logPath, '');
const log = (record: Record<string, unknown>) => {
  appendFileSync(logPath, `${JSON.stringify({ t: Number(elapsed().toFixed(1)), ...record })}\n`);
  console.log(JSON.stringify(record));
};

const trainItems = await loadFashionMnist('train', { download: false });
const testItems = await loadFashionMnist('test', { download: false });
const canvasOptions = { canvas: 64, items: [1, 4] as const, scale: [0.6, 1.0] as const };
// Every step draws fresh canvases: the set is as long as any run can use.
const train = new FashionDetection(trainItems, { ...canvasOptions, length: 2 ** 31, seed: seed * 2 + 1 });
const test = new FashionDetection(testItems, { ...canvasOptions, length: evalImages, seed: seed * 2 + 2 });
const model = new DetrForObjectDetection({ ...DETR_FASHION_MNIST, labels: [...FASHION_MNIST_CLASSES] });
log({
  phase: 'setup',
  backend: getBackend(),
  cpus: cpus().length,
  cpu: cpus()[0]?.model,
  params: model.numParameters(),
  steps: minutes > 0 ? null : steps,
  minutes,
  pretrainSteps,
  batch,
  lr: baseLr,
});

// Phase 1: the trunk as a classifier of single items (scale 0.6-1.0, anywhere on a 32x32 canvas).
const trunk = new DetrResNetBackbone(model.config.backbone, 1, { frozenBatchNorm: false });
const head = new nn.Linear(trunk.outChannels, 10);
const itemsTrain = new FashionDetection(trainItems, {
  canvas: 32,
  items: [1, 1],
  scale: [0.6, 1.0],
  length: 1 << 30,
  seed: 11,
});
const itemsTest = new FashionDetection(testItems, {
  canvas: 32,
  items: [1, 1],
  scale: [0.6, 1.0],
  length: 1 << 30,
  seed: 12,
});
const classify = (x: Tensor) => head.forward(F.mean(trunk.forward(x), [2, 3]));
const itemBatch = (ds: FashionDetection, start: number, n: number) => {
  const samples = [];
  for (let i = start; samples.length < n; i++) {
    const s = ds.get(i);
    if (s.labels.length === 1) samples.push(s);
  }
  return {
    x: stackImages(samples),
    y: new Tensor(
      Float64Array.from(samples, (s) => s.labels[0]),
      [n],
    ),
  };
};
{
  const params = [...trunk.parameters(), ...head.parameters()];
  const opt = new optim.AdamW(params, { lr: 2e-3, weightDecay: 1e-4 });
  const schedule = optim.cosineSchedule({
    baseLr: 2e-3,
    totalSteps: pretrainSteps,
    warmupSteps: 30,
    minLr: 1e-5,
  });
  for (let step = 0; step < pretrainSteps; step++) {
    optim.setLr(opt, schedule(step));
    const { x, y } = itemBatch(itemsTrain, step * 80, 64);
    const loss = F.crossEntropy(classify(x), y);
    opt.zeroGrad();
    loss.backward();
    opt.step();
    if (step % 50 === 0 || step === pretrainSteps - 1) log({ phase: 'pretrain', step, loss: loss.item() });
  }
  trunk.eval();
  let correct = 0;
  for (let b = 0; b < 16; b++) {
    const { x, y } = itemBatch(itemsTest, b * 80, 64);
    const pred = noGrad(() => classify(x)).argmax(1);
    for (let i = 0; i < 64; i++) if (pred.data[i] === y.data[i]) correct++;
  }
  log({ phase: 'pretrain_eval', item_accuracy: correct / 1024, seconds: elapsed() });
  const state = new Map([...trunk.stateDict()].filter(([k]) => !k.endsWith('num_batches_tracked')));
  model.model.backbone.model.loadStateDict(state);
}

// Phase 2: DETR with the set loss and auxiliary decoding losses.
const backboneParams = new Set(model.model.backbone.parameters());
const opt = new optim.AdamW(
  [
    { params: model.parameters().filter((p) => !backboneParams.has(p)), lrScale: 1 },
    { params: [...backboneParams], lrScale: backboneLrScale },
  ],
  { lr: baseLr, weightDecay: 1e-4 },
);
const warmupSteps = 100;
const cosine = optim.cosineSchedule({
  baseLr,
  totalSteps: 1000 + warmupSteps,
  warmupSteps,
  minLr: baseLr * 0.02,
});
const detrStarted = Date.now();
/** Training progress in [0, 1]: by steps, or by time with --minutes. */
const progress = (step: number) =>
  minutes > 0 ? Math.min(1, (Date.now() - detrStarted) / 60000 / minutes) : Math.min(1, step / steps);
// Linear warmup by steps, then the cosine over the remaining progress.
const schedule = (step: number) =>
  step < warmupSteps ? cosine(step) : cosine(warmupSteps + Math.round(1000 * progress(step)));

function evaluate(count: number) {
  model.eval();
  const detections: Array<Array<{ box: Box; score: number; label: number }>> = [];
  const truths: Array<{ boxes: Box[]; labels: number[] }> = [];
  for (let start = 0; start < count; start += 32) {
    const samples = Array.from({ length: Math.min(32, count - start) }, (_, i) => test.get(start + i));
    const out = noGrad(() => model.forward(stackImages(samples)));
    const found = postProcessDetections(out, {
      threshold: 0.001,
      targetSizes: samples.map(() => [64, 64] as [number, number]),
    });
    found.forEach((d, i) => {
      detections.push(d.map((x) => ({ box: x.box, score: x.score, label: x.label })));
      truths.push({ boxes: samples[i].boxes, labels: samples[i].labels });
    });
  }
  model.train();
  return meanAveragePrecision(detections, truths);
}

model.train();
let window = { loss: 0, ce: 0, bbox: 0, giou: 0, n: 0, since: Date.now() };
let step = 0;
for (; step < steps && !(minutes > 0 && progress(step) >= 1); step++) {
  optim.setLr(opt, schedule(step));
  const samples = Array.from({ length: batch }, (_, i) => train.get(step * batch + i));
  const out = model.forward(stackImages(samples));
  const { loss, parts } = detrLoss(out, samples.map(toDetrTarget), model.config);
  opt.zeroGrad();
  loss.backward();
  optim.clipGradNorm_(model.parameters(), 0.1);
  opt.step();
  window = {
    loss: window.loss + loss.item(),
    ce: window.ce + parts.loss_ce,
    bbox: window.bbox + parts.loss_bbox,
    giou: window.giou + parts.loss_giou,
    n: window.n + 1,
    since: window.since,
  };
  if ((step + 1) % 25 === 0) {
    const n = window.n;
    log({
      phase: 'detr',
      step: step + 1,
      lr: schedule(step),
      loss: window.loss / n,
      loss_ce: window.ce / n,
      loss_bbox: window.bbox / n,
      loss_giou: window.giou / n,
      s_per_step: (Date.now() - window.since) / 1000 / n,
    });
    window = { loss: 0, ce: 0, bbox: 0, giou: 0, n: 0, since: Date.now() };
  }
  if ((step + 1) % 300 === 0) {
    const r = evaluate(256);
    log({ phase: 'eval', step: step + 1, images: 256, ap: r.map, ap50: r.map50 });
  }
}
const trainSeconds = elapsed();

const final = evaluate(evalImages);
const metrics = {
  ap: final.map,
  ap50: final.map50,
  ap75: final.map75,
  per_class_ap50: Object.fromEntries([...final.perClass].map(([c, v]) => [FASHION_MNIST_CLASSES[c], v.ap50])),
  test_images: evalImages,
  train_images: step * batch,
  steps: step,
  pretrain_steps: pretrainSteps,
  train_seconds: trainSeconds,
  backend: getBackend(),
  cpus: cpus().length,
  cpu: cpus()[0]?.model,
};
log({ phase: 'final', ...metrics });
model.eval();
writeSafetensors(join(outDir, 'model.safetensors'), model.stateDict(), { metadata: { format: 'pt' } });
writeFileAtomic(join(outDir, 'config.json'), `${JSON.stringify(detrConfigToHf(model.config), null, 1)}\n`);
writeFileAtomic(
  join(outDir, 'preprocessor_config.json'),
  `${JSON.stringify({ do_resize: false, do_normalize: false, image_mean: [0], image_std: [1] }, null, 1)}\n`,
);
writeFileAtomic(join(outDir, 'metrics.json'), `${JSON.stringify(metrics, null, 1)}\n`);

// Per-query decoder attention (last layer, heads averaged) for a few test canvases.
mkdirSync(figuresDir, { recursive: true });
for (const index of [0, 1, 2, 3]) {
  const sample = test.get(index);
  const image = stackImages([sample]);
  const out = noGrad(() => model.forward(image, { captureAttention: true }));
  const cross = out.attentions?.decoderCross.at(-1) as Tensor;
  const maps = queryAttentionMaps(cross, out.featureSize); // (1, Q, h, w)
  const [h, w] = out.featureSize;
  const found = postProcessDetections(out, { threshold: 0.5, targetSizes: [[64, 64]] })[0];
  const png = await detectionFigure(
    new Tensor(sample.image.data, [1, 64, 64]),
    found.map((d) => ({
      box: d.box,
      label: FASHION_MNIST_CLASSES[d.label],
      score: d.score,
      attention: new Tensor(maps.data.slice(d.query * h * w, (d.query + 1) * h * w), [h, w]),
    })),
  );
  writeFileAtomic(join(figuresDir, `detr_fashion_attention_${index}.png`), png);
}
log({ phase: 'done', seconds: elapsed() });
