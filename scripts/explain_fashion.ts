/**
 * Where the Fashion-MNIST ViT looks. Given a trained checkpoint, on the first N test images:
 * - the share of each map's mass on the garment (pixels brighter than --threshold) against the
 *   garment's share of the image (objectMassShare), for rollout, flow, gradient rollout and token
 *   Grad-CAM: mean, median and the fraction of images where the map concentrates on the garment;
 * - the mean attention distance per head and layer (JSON + the ViT paper's Fig. 7 as SVG);
 * - overlays of the four maps for the first test image of every class.
 *
 *   node --import tsx scripts/explain_fashion.ts runs/vit_fashion/model.safetensors \
 *     [--model vit_tiny_patch16_224 --kwargs '{"patch_size": 4, ...}'] [--images 500] \
 *     [--mean 0.286 --std 0.353] [--threshold 0.1] [--out docs/explain/fashion]
 *
 * A glimpse train run's model.safetensors rebuilds its model from its metadata; --model/--kwargs name
 * the architecture of other checkpoints. Inputs are normalized with --mean/--std, by default
 * Fashion-MNIST's training-set statistics as glimpse train uses them.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type ExplainMethod, explainForward } from '../src/explain/explain.js';
import { attentionLayout } from '../src/explain/layout.js';
import {
  loadFashionMnist,
  mapGrid,
  meanAttentionDistance,
  noGrad,
  objectMassShare,
  Tensor,
  writeAttentionDistancePlot,
  writePngBytes,
} from '../src/index.js';
import { FASHION_MNIST_CLASSES } from '../src/data/index.js';
import { writeFileAtomic } from '../src/io/safetensors.js';
import { interpolate } from '../src/ops/resample.js';
import {
  FASHION_MNIST_MEAN,
  FASHION_MNIST_STD,
  loadModelWeights,
  loadTrainedModel,
} from '../src/train/recipe.js';

/**
 * The maps measured: each explain method with its defaults, plus rollout discarding the lowest 90% of
 * each layer's fused attention (Abnar & Zuidema's filtering; without it the identity term of six
 * residual layers keeps this small ViT's rollout close to uniform).
 */
const VARIANTS: Array<{ name: string; method: ExplainMethod; discardRatio?: number }> = [
  { name: 'rollout', method: 'rollout' },
  { name: 'rollout-discard0.9', method: 'rollout', discardRatio: 0.9 },
  { name: 'flow', method: 'flow' },
  { name: 'grad-rollout', method: 'grad-rollout' },
  { name: 'gradcam', method: 'gradcam' },
];
const METHODS = VARIANTS.map((v) => v.name);

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: 'string' },
    kwargs: { type: 'string' },
    images: { type: 'string', default: '500' },
    batch: { type: 'string', default: '50' },
    mean: { type: 'string' },
    std: { type: 'string' },
    threshold: { type: 'string', default: '0.1' },
    out: { type: 'string', default: 'docs/explain/fashion' },
  },
});
const checkpoint = positionals[0];
if (!checkpoint) {
  console.error(
    'usage: scripts/explain_fashion.ts CHECKPOINT [--model ID --kwargs JSON] [--images N] [--out DIR]',
  );
  process.exit(1);
}

// A glimpse train run's weights rebuild their own model (the recipe is in their metadata);
// --model/--kwargs name the architecture of any other checkpoint.
const kwargs: Record<string, unknown> = {
  num_classes: 10,
  in_chans: 1,
  img_size: 28,
  ...(values.kwargs ? (JSON.parse(values.kwargs) as Record<string, unknown>) : {}),
};
const model = values.model
  ? loadModelWeights(values.model, kwargs, checkpoint)
  : loadTrainedModel(checkpoint);
const modelName = values.model ?? `${model.family} from ${checkpoint}`;
// glimpse train normalizes Fashion-MNIST with the training set's pixel mean and std.
const mean = Number(values.mean ?? FASHION_MNIST_MEAN[0]);
const std = Number(values.std ?? FASHION_MNIST_STD[0]);
const count = Number(values.images);
const batchSize = Number(values.batch);
const threshold = Number(values.threshold);
const out = values.out as string;

model.eval();
const [chans, height, width] = model.pretrainedCfg.inputSize;
const layout = attentionLayout(model, height, width);
if (layout.kind !== 'tokens') throw new Error(`explain_fashion: ${modelName} is not a ViT/DeiT`);
const test = await loadFashionMnist('test', { download: false });
const n = Math.min(count, test.length);
console.log(
  `${modelName}: ${n} test images, normalize (x - ${mean}) / ${std}, garment = pixels > ${threshold}`,
);

/** (B, C, H, W) model input from 28 x 28 gray images in [0, 1]. */
function batchInput(images: Float32Array[]): Tensor {
  const b = images.length;
  const plane = 28 * 28;
  const raw = new Float32Array(b * plane);
  images.forEach((img, i) => {
    for (let p = 0; p < plane; p++) raw[i * plane + p] = (img[p] - mean) / std;
  });
  let x = new Tensor(raw, [b, 1, 28, 28]);
  if (height !== 28 || width !== 28)
    x = noGrad(() => interpolate(x, { size: [height, width], mode: 'bilinear', alignCorners: false }));
  if (chans === 3) x = noGrad(() => x.expand([b, 3, height, width]).clone());
  return x;
}

interface Scores {
  mass: number[];
  area: number[];
  concentration: number[];
  /** maps with no positive value (Grad-CAM when no head's evidence is positive) */
  empty: number;
}
const scores: Record<string, Scores> = Object.fromEntries(
  METHODS.map((m) => [m, { mass: [], area: [], concentration: [], empty: 0 }]),
);
const perClass: Record<string, number[][]> = Object.fromEntries(
  METHODS.map((m) => [m, FASHION_MNIST_CLASSES.map(() => [])]),
);
let distanceSum: number[][] | null = null;
let correct = 0;
const firstOfClass = new Map<number, { image: Float32Array; maps: Float32Array[] }>();
const started = performance.now();
for (let start = 0; start < n; start += batchSize) {
  const indices = Array.from({ length: Math.min(batchSize, n - start) }, (_, i) => start + i);
  const samples = indices.map((i) => test.get(i));
  const x = batchInput(samples.map((s) => s.image.data));
  for (const s of samples)
    if (!firstOfClass.has(s.label)) firstOfClass.set(s.label, { image: s.image.data, maps: [] });
  const forward = () => model.forward(x, { captureAttention: true });
  for (const { name: method, method: explainMethod, discardRatio } of VARIANTS) {
    const r = explainForward(forward, layout, { method: explainMethod, discardRatio });
    const [, t, gh, gw] = r.maps.shape;
    const plane = gh * gw;
    if (method === 'rollout') {
      const d = meanAttentionDistance(r.attentions, layout);
      const b = indices.length;
      distanceSum = distanceSum
        ? distanceSum.map((row, l) => row.map((v, h) => v + b * d[l][h]))
        : d.map((row) => row.map((v) => b * v));
      const logits = r.logits.data as Float32Array;
      samples.forEach((s, i) => {
        const row = Array.from(logits.subarray(i * 10, (i + 1) * 10));
        if (row.indexOf(Math.max(...row)) === s.label) correct++;
      });
    }
    samples.forEach((s, i) => {
      const mapData = (r.maps.data as Float32Array).slice(i * t * plane, i * t * plane + plane);
      const share = objectMassShare(
        new Tensor(s.image.data, [1, 28, 28]),
        new Tensor(mapData, [gh, gw]),
        threshold,
      );
      scores[method].mass.push(share.massInside);
      scores[method].area.push(share.areaInside);
      scores[method].concentration.push(share.concentration);
      if (!mapData.some((v) => v > 0)) scores[method].empty++;
      perClass[method][s.label].push(share.concentration);
      const first = firstOfClass.get(s.label);
      if (first?.image === s.image.data) first.maps.push(mapData);
    });
  }
  process.stderr.write(`\r${start + indices.length}/${n} images`);
}
process.stderr.write('\n');

const avg = (v: number[]) => v.reduce((a, b) => a + b, 0) / Math.max(1, v.length);
const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length ? (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2 : 0;
};
const summary = {
  checkpoint,
  model: modelName,
  images: n,
  accuracy: correct / n,
  normalize: { mean, std },
  garmentThreshold: threshold,
  seconds: (performance.now() - started) / 1000,
  methods: Object.fromEntries(
    METHODS.map((m) => [
      m,
      {
        massInsideMean: avg(scores[m].mass),
        areaInsideMean: avg(scores[m].area),
        concentrationMean: avg(scores[m].concentration),
        concentrationMedian: median(scores[m].concentration),
        shareOfImagesConcentrated: scores[m].mass.filter((v, i) => v > scores[m].area[i]).length / n,
        emptyMaps: scores[m].empty,
        concentrationByClass: Object.fromEntries(
          FASHION_MNIST_CLASSES.map((c, k) => [c, avg(perClass[m][k])]),
        ),
      },
    ]),
  ),
};
mkdirSync(out, { recursive: true });
writeFileAtomic(join(out, 'mass.json'), `${JSON.stringify(summary, null, 1)}\n`);
const distances = (distanceSum as number[][]).map((row) => row.map((v) => v / n));
writeFileAtomic(
  join(out, 'attention_distance.json'),
  `${JSON.stringify({ model: modelName, images: n, distances }, null, 1)}\n`,
);
writeAttentionDistancePlot(join(out, 'attention_distance.svg'), distances, {
  title: `Fashion-MNIST ViT: mean attention distance (${n} test images)`,
});

// One row per class (its first test image), one column per method; images enlarged 8x.
const [gh, gw] = layout.gridSize;
for (const [label, entry] of [...firstOfClass.entries()].sort((a, b) => a[0] - b[0])) {
  const big = noGrad(() =>
    interpolate(new Tensor(entry.image, [1, 1, 28, 28]), { size: [224, 224], mode: 'nearest' })
      .expand([1, 3, 224, 224])
      .clone(),
  ).reshape([3, 224, 224]);
  const maps = new Tensor(Float32Array.from(entry.maps.flatMap((m) => Array.from(m))), [
    1,
    entry.maps.length,
    gh,
    gw,
  ]);
  const rgb = await mapGrid(maps, { image: big, cellSize: 160, alpha: 0.5 });
  const name = FASHION_MNIST_CLASSES[label].toLowerCase().replace(/[^a-z]+/g, '_');
  await writePngBytes(join(out, `overlays_${label}_${name}.png`), rgb.data, rgb.width, rgb.height);
}
for (const m of METHODS) {
  const s = summary.methods[m];
  console.log(
    `${m.padEnd(18)} mass on garment ${(100 * s.massInsideMean).toFixed(1)}% vs garment area ${(100 * s.areaInsideMean).toFixed(1)}%; concentration mean ${s.concentrationMean.toFixed(2)}, median ${s.concentrationMedian.toFixed(2)}; concentrated in ${(100 * s.shareOfImagesConcentrated).toFixed(1)}% of images; ${s.emptyMaps} empty maps`,
  );
}
console.log(
  `accuracy on these images ${(100 * summary.accuracy).toFixed(2)}%; wrote ${out}/mass.json, attention_distance.{json,svg}, overlays_*.png (columns: ${METHODS.join(', ')})`,
);
