/**
 * Trains a segmentation preset and writes the figures of docs/segmentation:
 *
 *   node --import tsx scripts/train_segmentation.ts --preset fashion2d --out runs/seg_fashion2d --figures docs/segmentation
 *   node --import tsx scripts/train_segmentation.ts --preset shapes3d  --out runs/seg_shapes3d  --figures docs/segmentation
 *   node --import tsx scripts/train_segmentation.ts --preset fashion2d --weights runs/seg_fashion2d/model.safetensors --figures docs/segmentation
 *   (--init FILE continues from a checkpoint (its weights and config) with a fresh schedule; --lr sets
 *   its peak; --save-every N writes the checkpoint every N steps, default 50; --config JSON replaces
 *   entries of the preset's model config)
 *
 * Figures: test samples as [image | truth | prediction] overlays (2D) or axial/coronal/sagittal
 * slices of truth and prediction (3D), and a sliding-window run on inputs twice the training size
 * (128x128 canvases / 64^3 volumes with the training object sizes) with its Dice.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
// Registers the native backend (the default when its addon loads).
import '../src/backend/native.js';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  FashionSegmentation,
  type SegmentationDataset,
  Shapes3D,
  segmentationBatch,
} from '../src/data/segmentation.js';
import { loadFashionMnist } from '../src/data/fashion_mnist.js';
import { deriveSeed } from '../src/data/loader.js';
import { div, sub } from '../src/ops/elementwise.js';
import { noGrad } from '../src/tensor/autograd.js';
import { SegmentationMetrics, type SegmentationSummary } from '../src/segment/metrics.js';
import {
  loadSegmentationCheckpoint,
  modelInputSize,
  predictLabels,
  type SegmentationModel,
} from '../src/segment/model.js';
import {
  busiestSlices,
  type RgbPicture,
  overlayLabels,
  sliceOverlays,
  tilePictures,
  writePicture,
} from '../src/segment/render.js';
import { slidingWindowInference } from '../src/segment/sliding_window.js';
import {
  evaluateSegmentation,
  getSegmentPreset,
  loadPresetData,
  trainSegmentation,
} from '../src/segment/train.js';

const { values } = parseArgs({
  options: {
    preset: { type: 'string', default: 'fashion2d' },
    out: { type: 'string' },
    weights: { type: 'string' },
    figures: { type: 'string' },
    epochs: { type: 'string' },
    'train-size': { type: 'string' },
    'test-size': { type: 'string' },
    init: { type: 'string' },
    lr: { type: 'string' },
    'save-every': { type: 'string' },
    config: { type: 'string' },
    stage: { type: 'string', default: 'full' },
    seed: { type: 'string', default: '0' },
  },
});
const presetName = values.preset as string;
const preset = getSegmentPreset(presetName);
const seed = Number(values.seed);
const log = (line: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

let model: SegmentationModel;
let summary: SegmentationSummary;
if (values.weights) {
  model = loadSegmentationCheckpoint(values.weights).model;
  const test = await loadPresetData(preset, 'test', {
    seed,
    length: values['test-size'] ? Number(values['test-size']) : undefined,
  });
  summary = evaluateSegmentation(model, test, { mean: preset.mean, std: preset.std, hd95: true });
  log(
    `test: mean foreground Dice ${summary.meanForegroundDice.toFixed(4)}, IoU ${summary.meanForegroundIou.toFixed(4)}, HD95 ${summary.meanForegroundHd95.toFixed(2)}`,
  );
} else {
  if (!values.out)
    throw new Error('train_segmentation: pass --out DIR (or --weights FILE to only draw figures)');
  const result = await trainSegmentation(presetName, {
    out: values.out,
    epochs: values.epochs ? Number(values.epochs) : undefined,
    trainSize: values['train-size'] ? Number(values['train-size']) : undefined,
    testSize: values['test-size'] ? Number(values['test-size']) : undefined,
    init: values.init,
    lr: values.lr ? Number(values.lr) : undefined,
    saveEvery: values['save-every'] ? Number(values['save-every']) : undefined,
    modelConfig: values.config ? JSON.parse(values.config) : undefined,
    stage: values.stage as 'full' | 'encoder',
    seed,
    log,
  });
  model = result.model;
  summary = result.summary;
}

if (values.figures) {
  const dir = values.figures;
  mkdirSync(dir, { recursive: true });
  model.eval();
  const roi = modelInputSize(model);
  const normalize = (x: Parameters<typeof sub>[0]) => noGrad(() => div(sub(x, preset.mean), preset.std));
  const test = await loadPresetData(preset, 'test', { seed, length: 16 });

  /** Predicted labels of samples `idx` of `ds` (sliding windows when larger than the model's input). */
  const predict = (ds: SegmentationDataset, idx: number[]) => {
    const { images, masks } = segmentationBatch(ds, idx);
    const x = normalize(images);
    const large = ds.shape.slice(1).some((s, i) => s !== roi[i]);
    const logits = noGrad(() =>
      large
        ? slidingWindowInference(x, (w) => model.forward(w), {
            roiSize: roi,
            overlap: 0.5,
            mode: 'gaussian',
            swBatchSize: 4,
          })
        : model.forward(x),
    );
    return { images, masks, pred: predictLabels(logits) };
  };
  const score = (ds: SegmentationDataset, n: number): SegmentationSummary => {
    const metrics = new SegmentationMetrics(ds.classes, { hd95: true });
    const spatial = ds.shape.slice(1);
    const voxels = spatial.reduce((a, b) => a * b, 1);
    for (let i = 0; i < n; i += 2) {
      const idx = [i, i + 1].filter((k) => k < n);
      const { masks, pred } = predict(ds, idx);
      idx.forEach((_, b) => {
        metrics.update(
          pred.subarray(b * voxels, (b + 1) * voxels),
          (masks.data as Int32Array).subarray(b * voxels, (b + 1) * voxels),
          spatial,
        );
      });
    }
    return metrics.summary();
  };

  let large: SegmentationDataset;
  if (preset.dataset === 'fashion2d') {
    const n = roi[0];
    const { images, masks, pred } = predict(
      test,
      Array.from({ length: 8 }, (_, i) => i),
    );
    const pictures: RgbPicture[] = [];
    for (let b = 0; b < 8; b++) {
      const img = (images.data as Float32Array).subarray(b * n * n, (b + 1) * n * n);
      const truth = (masks.data as Int32Array).subarray(b * n * n, (b + 1) * n * n);
      const p = pred.subarray(b * n * n, (b + 1) * n * n);
      const o = { scale: 4, range: [0, 1] as const };
      pictures.push(
        overlayLabels(img, null, n, n, o),
        overlayLabels(img, truth, n, n, o),
        overlayLabels(img, p, n, n, o),
      );
    }
    await writePicture(join(dir, 'fashion2d_test_overlays.png'), tilePictures(pictures, 6));
    const source = await loadFashionMnist('test');
    large = new FashionSegmentation(source, {
      ...(preset.dataOptions as object),
      canvas: 2 * n,
      items: [6, 12],
      length: 16,
      seed: deriveSeed(seed, 3),
    });
    const big = predict(large, [0, 1]);
    const m = 2 * n;
    const bigPictures: RgbPicture[] = [];
    for (let b = 0; b < 2; b++) {
      const img = (big.images.data as Float32Array).subarray(b * m * m, (b + 1) * m * m);
      const o = { scale: 3, range: [0, 1] as const };
      bigPictures.push(
        overlayLabels(img, (big.masks.data as Int32Array).subarray(b * m * m, (b + 1) * m * m), m, m, o),
        overlayLabels(img, big.pred.subarray(b * m * m, (b + 1) * m * m), m, m, o),
      );
    }
    await writePicture(join(dir, 'fashion2d_sliding_window.png'), tilePictures(bigPictures, 2));
  } else {
    const s = roi[0];
    const shape: [number, number, number] = [s, s, s];
    const volumes: RgbPicture[] = [];
    for (const i of [0, 1, 2]) {
      const { images, masks, pred } = predict(test, [i]);
      const truth = masks.data as Int32Array;
      const at = busiestSlices(truth, shape);
      volumes.push(
        ...sliceOverlays(images.data as Float32Array, [null, truth, pred], shape, at, { scale: 4 }),
      );
    }
    await writePicture(join(dir, 'shapes3d_test_slices.png'), tilePictures(volumes, 3));
    large = new Shapes3D({
      ...(preset.dataOptions as object),
      size: 2 * s,
      objects: [4, 8],
      objectScale: 1,
      length: 6,
      seed: deriveSeed(seed, 3),
    });
    const big = predict(large, [0]);
    const m = 2 * s;
    const at = busiestSlices(big.masks.data as Int32Array, [m, m, m]);
    await writePicture(
      join(dir, 'shapes3d_sliding_window.png'),
      tilePictures(
        sliceOverlays(
          big.images.data as Float32Array,
          [big.masks.data as Int32Array, big.pred],
          [m, m, m],
          at,
          { scale: 3 },
        ),
        3,
      ),
    );
  }
  const largeSummary = score(large, large.length);
  log(
    `sliding window on ${large.shape.slice(1).join('x')} inputs (${large.length}): mean foreground Dice ${largeSummary.meanForegroundDice.toFixed(4)}, HD95 ${largeSummary.meanForegroundHd95.toFixed(2)}`,
  );
  writeFileSync(
    join(dir, `${presetName}_metrics.json`),
    `${JSON.stringify({ preset: presetName, test: summary, slidingWindow: { shape: large.shape, samples: large.length, summary: largeSummary } }, null, 2)}\n`,
  );
}
