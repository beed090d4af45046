/**
 * glimpse stn-demo: the spatial transformer paper's distorted-MNIST comparison on Fashion-MNIST.
 * Trains a CNN baseline, an ST-CNN and a 2xST-CNN of about the same parameter count, with the same
 * data, epochs and optimizer, on rotated/scaled/translated (optionally cluttered) Fashion-MNIST;
 * prints their test errors and how well the transformers undo the distortion (they see the ground
 * truth only through the labels), and draws inputs next to what each transformer samples.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import sharp from 'sharp';
import type { ImageDataset, Sample } from '../../data/dataset.js';
import { DistortedDataset, loadDistortedFashionMnist } from '../../data/distorted_fashion_mnist.js';
import { encodePng, writePngBytes } from '../../io/image.js';
import { readSafetensors, writeFileAtomic, writeSafetensors } from '../../io/safetensors.js';
import {
  LOCALIZATIONS,
  ClassTemplateAlignment,
  ClassTurnPrior,
  type LocalizationKind,
  rotationEquivarianceLoss,
  type StnClassifierOptions,
  StnClassifier,
  type StTransform,
  TRANSFORMS,
  type TransformerOutput,
} from '../../models/stn.js';
import { manualSeed } from '../../ops/creation.js';
import { add, mul } from '../../ops/elementwise.js';
import { noGrad } from '../../tensor/autograd.js';
import { Tensor } from '../../tensor/tensor.js';
import { evaluate, train } from '../../train/trainer.js';

export type DemoModel = 'cnn' | 'st' | 'st2' | 'st-series';

const MODEL_HEADS: Record<DemoModel, number> = { cnn: 0, st: 1, st2: 2, 'st-series': 1 };
const MODEL_NAMES: Record<DemoModel, string> = {
  cnn: 'CNN',
  st: 'ST-CNN',
  st2: '2xST-CNN',
  'st-series': 'series ST-CNN',
};

export interface StnDemoOptions {
  trainSize: number;
  testSize: number;
  epochs: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  canvas: number;
  clutter: number;
  transform: StTransform;
  /** Side of what the transformers sample. */
  stOutput: number;
  /** Hidden width of the ST-CNN's classifier; the others get the width that matches its parameter count. */
  hidden: number;
  batchNorm: boolean;
  /**
   * Which localization net the transformers use ('moments': the coordinate-aware one): one kind for
   * all, or one per stage of st-series.
   */
  localization: LocalizationKind[];
  /** Channels of the localization nets' two convs and the width of their fc layer. */
  locChannels: [number, number];
  locHidden: number;
  /** The localization nets' learning rate as a multiple of lr, and its schedule. */
  locLrScale: number;
  locSchedule: 'cosine' | 'constant';
  /**
   * Epochs over which the training set's rotation range grows linearly up to the protocol's +-60
   * degrees (0: the protocol from the first epoch). The test set is always the full protocol.
   */
  rotationCurriculum: number;
  /**
   * Weight of the self-supervised rotation-equivariance term (rotationEquivarianceLoss) added to the
   * transformer models' loss (0: classification loss only), and the largest turn of its copies (degrees).
   */
  equivariance: number;
  equivarianceAngle: number;
  /** Weight of the per-class zero-mean prior on the turns (ClassTurnPrior; 0: off). */
  classTurnPrior: number;
  /** Weight of the per-class congealing term (ClassTemplateAlignment; 0: off). */
  classTemplate: number;
  models: DemoModel[];
  seed: number;
  out: string;
  progress: boolean;
  print: (line: string) => void;
}

/** How far a transformer's outputs are from upright, centered, same-size items (RMS over the test set). */
export interface Rectification {
  /** Rotation of the items (degrees): before = in the input, after = in the transformer's output. */
  angle: { before: number; after: number };
  /** Distance of the item's center from the image center, as a fraction of the image side. */
  center: { before: number; after: number };
  /** Relative spread (std / mean) of the item's size. */
  size: { before: number; after: number };
  /**
   * Spread of the rotation left in the output around its circular mean (RMS degrees): small when the
   * transformer brings every item to one orientation, even if that orientation is not upright.
   */
  angleSpread: { before: number; after: number };
  /** Rotation left in the output (RMS degrees) per class, in class order. */
  angleByClass: number[];
  /**
   * Per class, the circular mean of the rotation left (degrees) and the RMS spread around it: a class
   * brought to one orientation of its own that is not upright has a large mean and a small spread.
   */
  angleMeanByClass: number[];
  angleSpreadByClass: number[];
}

export interface ModelReport {
  model: DemoModel;
  name: string;
  params: number;
  localizationParams: number;
  hidden: number;
  testError: number;
  /** Wall-clock seconds of training (and per-epoch evaluation). */
  trainSeconds: number;
  /** Process CPU seconds of the same (steadier than wall time on a shared machine). */
  trainCpuSeconds: number;
  history: Array<{ epoch: number; trainLoss: number; trainAcc: number; testAcc?: number }>;
  /** Per transformer head (affine-family transforms only). */
  rectification: Rectification[];
}

export function modelOptions(o: StnDemoOptions, model: DemoModel, hidden: number): StnClassifierOptions {
  return {
    inputSize: [o.canvas, o.canvas],
    heads: MODEL_HEADS[model],
    transform: o.transform,
    // an 'attention' transformer centers and zooms, a second one judges the orientation on its crop
    stages: model === 'st-series' ? ['attention', o.transform] : undefined,
    stOutputSize: o.stOutput,
    hidden,
    batchNorm: o.batchNorm,
    localization: o.localization[0],
    stageLocalization: model === 'st-series' && o.localization.length > 1 ? o.localization : undefined,
    localizationOptions: { channels: o.locChannels, hidden: o.locHidden },
  };
}

/**
 * A model as `stn-demo` saved it: <dir>/results.json (its settings and classifier width) and
 * <dir>/<kind>.safetensors, rebuilt and loaded; with the settings it was trained with.
 */
export function loadDemoModel(
  dir: string,
  kind: DemoModel,
): { model: StnClassifier; settings: StnDemoOptions } {
  const results = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8'));
  const report = (results.models as ModelReport[]).find((m) => m.model === kind);
  if (!report) throw new Error(`${join(dir, 'results.json')} has no '${kind}' model; pass one it has`);
  const model = new StnClassifier(modelOptions(results.settings, kind, report.hidden));
  model.loadStateDict(readSafetensors(join(dir, `${kind}.safetensors`)).tensors);
  return { model, settings: results.settings };
}

/** The classifier width whose parameter count comes closest to `budget`. */
function matchHidden(o: StnDemoOptions, model: DemoModel, budget: number): number {
  const count = (h: number) => new StnClassifier(modelOptions(o, model, h)).numParameters();
  // The count is affine in the width: two probes give the slope.
  const [c1, c2] = [count(1), count(2)];
  return Math.max(1, Math.round(1 + (budget - c1) / (c2 - c1)));
}

const rms = (xs: number[]) => Math.sqrt(xs.reduce((a, v) => a + v * v, 0) / xs.length);
const spread = (xs: number[]) => {
  const mean = xs.reduce((a, v) => a + v, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, v) => a + (v - mean) ** 2, 0) / xs.length) / mean;
};
const wrapDegrees = (a: number) => ((((a + 180) % 360) + 360) % 360) - 180;
/** RMS distance of angles (degrees) from their circular mean. */
/** Circular mean of angles (degrees). */
const circularMean = (angles: number[]) => {
  const rad = angles.map((a) => (a * Math.PI) / 180);
  const mean = Math.atan2(
    rad.reduce((acc, a) => acc + Math.sin(a), 0),
    rad.reduce((acc, a) => acc + Math.cos(a), 0),
  );
  return (mean * 180) / Math.PI;
};
const circularSpread = (angles: number[]) => {
  const mean = circularMean(angles);
  return rms(angles.map((a) => wrapDegrees(a - mean)));
};

/**
 * Compares each head's theta with the distortion that made the input. theta maps output coordinates
 * to input coordinates; the item was drawn as c + s R(angle) u, so the output shows it upright when
 * theta's linear part is a multiple of R(angle). The rotation read off theta is that of its nearest
 * similarity, atan2(A10 - A01, A00 + A11).
 */
/** Degrees in [-180, 180) of an item turned by `angle` degrees left after sampling through theta (a similarity). */
export function rotationLeft(theta: Float32Array, angle: number): number {
  const [a00, a01, , a10, a11] = theta;
  return wrapDegrees(angle - (Math.atan2(a10 - a01, a00 + a11) * 180) / Math.PI);
}

export function rectification(
  thetas: Float32Array[],
  dataset: DistortedDataset,
  indices: number[],
): Rectification {
  const n = dataset.canvas;
  const before = { angle: [] as number[], center: [] as number[], size: [] as number[] };
  const after = { angle: [] as number[], center: [] as number[], size: [] as number[] };
  indices.forEach((index, b) => {
    const d = dataset.distortion(index);
    const [a00, a01, t0, a10, a11, t1] = thetas[b].subarray(0, 6);
    // item center in normalized input coordinates (pixel p sits at (2p + 1) / n - 1)
    const cx = (2 * d.cx + 1) / n - 1;
    const cy = (2 * d.cy + 1) / n - 1;
    const det = a00 * a11 - a01 * a10;
    // the center in output coordinates: A^-1 (c - t)
    const ox = (a11 * (cx - t0) - a01 * (cy - t1)) / det;
    const oy = (-a10 * (cx - t0) + a00 * (cy - t1)) / det;
    before.angle.push(d.angle);
    after.angle.push(rotationLeft(thetas[b], d.angle));
    // normalized coordinates span 2 per image side
    before.center.push(Math.hypot(cx, cy) / 2);
    after.center.push(Math.hypot(ox, oy) / 2);
    before.size.push(d.scale);
    after.size.push(d.scale / Math.sqrt(Math.abs(det)));
  });
  const byClass: number[][] = dataset.classes.map(() => []);
  indices.forEach((index, b) => {
    byClass[dataset.label(index)].push(after.angle[b]);
  });
  return {
    angleSpread: { before: circularSpread(before.angle), after: circularSpread(after.angle) },
    angleByClass: byClass.map((a) => (a.length ? rms(a) : Number.NaN)),
    angleMeanByClass: byClass.map((a) => (a.length ? circularMean(a) : Number.NaN)),
    angleSpreadByClass: byClass.map((a) => (a.length ? circularSpread(a) : Number.NaN)),
    angle: { before: rms(before.angle), after: rms(after.angle) },
    center: { before: rms(before.center), after: rms(after.center) },
    size: { before: spread(before.size), after: spread(after.size) },
  };
}

/** Stacks dataset items into a (B, 1, H, W) batch. */
function batchOf(dataset: DistortedDataset, indices: number[]): Tensor {
  const n = dataset.canvas;
  const data = new Float32Array(indices.length * n * n);
  indices.forEach((index, b) => {
    data.set(dataset.get(index).image.data, b * n * n);
  });
  return new Tensor(data, [indices.length, 1, n, n]);
}

/** Every head's output for a batch, in chunks (no graph). */
export function transformersOf(
  model: StnClassifier,
  dataset: DistortedDataset,
  indices: number[],
): TransformerOutput[][] {
  const chunks: TransformerOutput[][] = [];
  for (let i = 0; i < indices.length; i += 256) {
    const x = batchOf(dataset, indices.slice(i, i + 256));
    chunks.push(noGrad(() => model.transformers(x)));
  }
  return model.st ? Array.from({ length: model.numHeads }, (_, h) => chunks.map((c) => c[h])) : [];
}

export function thetasOf(parts: TransformerOutput[]): Float32Array[] {
  const out: Float32Array[] = [];
  for (const p of parts) {
    const data = (p.theta as Tensor).data as Float32Array;
    for (let b = 0; b < p.theta!.shape[0]; b++) out.push(data.subarray(6 * b, 6 * b + 6));
  }
  return out;
}

const HEAD_COLORS = ['#ff3b30', '#2ee6ff', '#ffd60a', '#7cff4d'];

/** A grayscale (h, w) plane as a PNG data URI. */
async function pngUri(plane: Float32Array, h: number, w: number): Promise<string> {
  const rgb = new Uint8Array(3 * h * w);
  for (let i = 0; i < h * w; i++)
    rgb.fill(Math.round(255 * Math.min(1, Math.max(0, plane[i]))), 3 * i, 3 * i + 3);
  return `data:image/png;base64,${Buffer.from(await encodePng(rgb, w, h)).toString('base64')}`;
}

/** The outline of a head's sampling grid (its border points) in input pixel coordinates. */
function gridOutline(grid: Tensor, b: number, inputSize: number): Array<[number, number]> {
  const [, ho, wo] = grid.shape;
  const g = grid.data as Float32Array;
  const at = (y: number, x: number): [number, number] => {
    const o = ((b * ho + y) * wo + x) * 2;
    // alignCorners=false: normalized -1 is the left edge of pixel 0
    return [((g[o] + 1) * inputSize) / 2, ((g[o + 1] + 1) * inputSize) / 2];
  };
  const pts: Array<[number, number]> = [];
  for (let x = 0; x < wo; x++) pts.push(at(0, x));
  for (let y = 0; y < ho; y++) pts.push(at(y, wo - 1));
  for (let x = wo - 1; x >= 0; x--) pts.push(at(ho - 1, x));
  for (let y = ho - 1; y >= 0; y--) pts.push(at(y, 0));
  return pts;
}

/**
 * The figure: per row one test image; for each ST model the input with every head's sampling
 * outline drawn in the head's color, then what each head sampled.
 */
async function writeFigure(
  path: string,
  dataset: DistortedDataset,
  indices: number[],
  models: Array<{ name: string; model: StnClassifier }>,
): Promise<void> {
  const n = dataset.canvas;
  const tile = 4 * n;
  const gap = 10;
  const header = 28;
  const x = batchOf(dataset, indices);
  const columns: Array<{ title: string; draw: (row: number, left: number, top: number) => Promise<string> }> =
    [];
  for (const { name, model } of models) {
    const heads = noGrad(() => model.transformers(x));
    columns.push({
      title: `${name}: input`,
      draw: async (row, left, top) => {
        const uri = await pngUri(x.data.subarray(row * n * n, (row + 1) * n * n) as Float32Array, n, n);
        const outlines = heads.map((h, k) => {
          const pts = gridOutline(h.grid, row, n)
            .map(([px, py]) => `${(left + (px * tile) / n).toFixed(1)},${(top + (py * tile) / n).toFixed(1)}`)
            .join(' ');
          return `<polygon points="${pts}" fill="none" stroke="${HEAD_COLORS[k % HEAD_COLORS.length]}" stroke-width="2"/>`;
        });
        // an outline can reach far outside the input (a head that zooms out): clip it to the tile
        const clip = `clip-${row}-${left}`;
        return `<clipPath id="${clip}"><rect x="${left}" y="${top}" width="${tile}" height="${tile}"/></clipPath><image x="${left}" y="${top}" width="${tile}" height="${tile}" href="${uri}" style="image-rendering:pixelated"/><g clip-path="url(#${clip})">${outlines.join('')}</g>`;
      },
    });
    heads.forEach((h, k) => {
      const [, , ho, wo] = h.output.shape;
      columns.push({
        title: heads.length > 1 ? `${name}: head ${k + 1}` : `${name}: output`,
        draw: async (row, left, top) => {
          const plane = h.output.data.subarray(row * ho * wo, (row + 1) * ho * wo) as Float32Array;
          const uri = await pngUri(plane, ho, wo);
          const frame = `<rect x="${left + 1}" y="${top + 1}" width="${tile - 2}" height="${tile - 2}" fill="none" stroke="${HEAD_COLORS[k % HEAD_COLORS.length]}" stroke-width="2"/>`;
          return `<image x="${left}" y="${top}" width="${tile}" height="${tile}" href="${uri}" style="image-rendering:pixelated"/>${frame}`;
        },
      });
    });
  }
  const width = columns.length * (tile + gap) + gap;
  const height = header + indices.length * (tile + gap) + gap;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">`,
    `<rect width="${width}" height="${height}" fill="#202020"/>`,
  ];
  columns.forEach((c, j) => {
    const left = gap + j * (tile + gap);
    parts.push(
      `<text x="${left + tile / 2}" y="${header - 9}" font-family="DejaVu Sans, sans-serif" font-size="14" fill="#eee" text-anchor="middle">${c.title}</text>`,
    );
  });
  for (let row = 0; row < indices.length; row++) {
    for (let j = 0; j < columns.length; j++) {
      parts.push(await columns[j].draw(row, gap + j * (tile + gap), header + row * (tile + gap)));
    }
  }
  parts.push('</svg>');
  const buf = await sharp(Buffer.from(parts.join('')))
    .removeAlpha()
    .raw()
    .toBuffer();
  await writePngBytes(path, new Uint8Array(buf.buffer, buf.byteOffset, buf.length), width, height);
}

/** One test image per class (the first of each), for the figure. */
function figureIndices(dataset: DistortedDataset, rows: number): number[] {
  const picked: number[] = [];
  const seen = new Set<number>();
  for (let i = 0; i < dataset.length && picked.length < rows; i++) {
    if (!seen.has(dataset.label(i))) {
      seen.add(dataset.label(i));
      picked.push(i);
    }
  }
  return picked;
}

/**
 * The training set as seen in each epoch: with a curriculum, epoch e < n draws rotations from
 * +-60 (e + 1) / (n + 1) degrees. Every other draw is the same, so each item turns further as the
 * range grows.
 */
class RotationCurriculum implements ImageDataset {
  readonly length: number;
  readonly classes: readonly string[];
  readonly imageShape: readonly [number, number, number];
  private readonly stages: DistortedDataset[];
  epoch = 0;

  constructor(full: DistortedDataset, epochs: number) {
    this.length = full.length;
    this.classes = full.classes;
    this.imageShape = full.imageShape;
    const options = {
      canvas: full.canvas,
      scale: full.scaleRange,
      translate: full.translate,
      clutter: full.clutter,
      clutterSize: full.clutterSize,
      seed: full.seed,
    };
    this.stages = Array.from(
      { length: epochs },
      (_, e) =>
        new DistortedDataset(full.base, { ...options, rotation: (full.rotation * (e + 1)) / (epochs + 1) }),
    );
    this.stages.push(full);
  }

  /** The rotation range of the current epoch, in degrees. */
  get rotation(): number {
    return this.current.rotation;
  }

  private get current(): DistortedDataset {
    return this.stages[Math.min(this.epoch, this.stages.length - 1)];
  }

  get(index: number): Sample {
    return this.current.get(index);
  }

  label(index: number): number {
    return this.current.label(index);
  }
}

/**
 * The extra loss terms of --equivariance, --class-turn-prior and --class-template for a one-head or
 * series ST-CNN (null for the others or when all are off).
 */
function selfSupervision(
  o: StnDemoOptions,
  kind: DemoModel,
  model: StnClassifier,
): ((images: Tensor, labels: Tensor) => Tensor) | null {
  if (
    (o.equivariance <= 0 && o.classTurnPrior <= 0 && o.classTemplate <= 0) ||
    (kind !== 'st' && kind !== 'st-series')
  )
    return null;
  const prior = new ClassTurnPrior(model.numClasses);
  const templates = new ClassTemplateAlignment(model.numClasses);
  return (images, labels) => {
    // the classification forward's pass of the localization nets, shared by every term
    const transformed = model.transformedFor(images);
    const theta = transformed.theta;
    if (!theta) throw new Error("the 'tps' transform has no turn for the self-supervised terms");
    const terms: Tensor[] = [];
    if (o.equivariance > 0) {
      const maxAngle = (o.equivarianceAngle * Math.PI) / 180;
      terms.push(mul(rotationEquivarianceLoss(model, images, { maxAngle, theta }), o.equivariance));
    }
    if (o.classTurnPrior > 0) terms.push(mul(prior.loss(model, images, labels, theta), o.classTurnPrior));
    if (o.classTemplate > 0)
      terms.push(mul(templates.loss(model, images, labels, transformed), o.classTemplate));
    return terms.reduce((a, b) => add(a, b));
  };
}

export async function runStnDemo(o: StnDemoOptions): Promise<ModelReport[]> {
  const distortion = { canvas: o.canvas, clutter: o.clutter };
  const trainSet = await loadDistortedFashionMnist('train', {
    ...distortion,
    limit: o.trainSize,
    seed: o.seed,
  });
  const testSet = await loadDistortedFashionMnist('test', {
    ...distortion,
    limit: o.testSize,
    seed: o.seed + 1,
  });
  const budget = new StnClassifier(modelOptions(o, 'st', o.hidden)).numParameters();
  o.print(
    `distorted Fashion-MNIST: ${o.trainSize} train / ${o.testSize} test, ${o.canvas}x${o.canvas}, rotation +-60, scale 0.7-1.2${o.clutter ? `, ${o.clutter} clutter pieces` : ''}; parameter budget ${budget}`,
  );
  const reports: ModelReport[] = [];
  const trained: Array<{ name: string; model: StnClassifier }> = [];
  const testIndices = Array.from({ length: testSet.length }, (_, i) => i);
  for (const kind of o.models) {
    const hidden = kind === 'st' ? o.hidden : matchHidden(o, kind, budget);
    manualSeed(o.seed);
    const model = new StnClassifier(modelOptions(o, kind, hidden));
    const trainView = new RotationCurriculum(trainSet, o.rotationCurriculum);
    const localizationParams = model.parameterGroups().localization.reduce((a, p) => a + p.size, 0);
    const name = MODEL_NAMES[kind];
    o.print(
      `${name}: ${model.numParameters()} parameters (${localizationParams} in localization nets), classifier width ${hidden}`,
    );
    const start = performance.now();
    const result = await train({
      model,
      train: trainView,
      eval: testSet,
      epochs: o.epochs,
      batchSize: o.batchSize,
      lr: o.lr,
      weightDecay: o.weightDecay,
      auxiliaryLoss: selfSupervision(o, kind, model),
      paramGroups:
        localizationParams > 0 && (o.locLrScale !== 1 || o.locSchedule !== 'cosine')
          ? [
              {
                params: model.parameterGroups().localization,
                lrScale: o.locLrScale,
                schedule: o.locSchedule,
              },
            ]
          : undefined,
      seed: o.seed,
      progress: o.progress,
      print: (line) => o.print(`  ${line}`),
      onEpoch: (record) => {
        trainView.epoch = record.epoch + 1;
        if (o.rotationCurriculum > 0)
          o.print(`  training rotations now +-${trainView.rotation.toFixed(0)} deg`);
        if (kind === 'cnn' || o.transform === 'tps') return;
        const angles = transformersOf(model, testSet, testIndices).map(
          (parts) => rectification(thetasOf(parts), testSet, testIndices).angle.after,
        );
        o.print(
          `  rotation left in the transformers' outputs (RMS): ${angles.map((a) => `${a.toFixed(1)} deg`).join(', ')}`,
        );
      },
    });
    const trainSeconds = (performance.now() - start) / 1000;
    const ev = await evaluate(model, testSet);
    const heads = o.transform === 'tps' ? [] : transformersOf(model, testSet, testIndices);
    const report: ModelReport = {
      model: kind,
      name,
      params: model.numParameters(),
      localizationParams,
      hidden,
      testError: 1 - ev.acc,
      trainSeconds,
      trainCpuSeconds: result.history.reduce((a, r) => a + (r.cpu_s ?? 0), 0),
      history: result.history.map((r) => ({
        epoch: r.epoch + 1,
        trainLoss: r.train_loss,
        trainAcc: r.train_acc,
        testAcc: r.eval_acc,
      })),
      rectification: heads.map((parts) => rectification(thetasOf(parts), testSet, testIndices)),
    };
    reports.push(report);
    // the trained weights, loadable into new StnClassifier(modelOptions) (results.json has the settings)
    writeSafetensors(join(o.out, `${kind}.safetensors`), model.stateDict());
    o.print(
      `${name}: test error ${(100 * report.testError).toFixed(2)}% (${trainSeconds.toFixed(0)} s of training)`,
    );
    report.rectification.forEach((r, k) => {
      o.print(
        `  head ${k + 1}: rotation RMS ${r.angle.before.toFixed(1)} -> ${r.angle.after.toFixed(1)} deg (spread ${r.angleSpread.before.toFixed(1)} -> ${r.angleSpread.after.toFixed(1)}), center offset RMS ${(100 * r.center.before).toFixed(1)}% -> ${(100 * r.center.after).toFixed(1)}% of the side, size spread ${(100 * r.size.before).toFixed(1)}% -> ${(100 * r.size.after).toFixed(1)}%`,
      );
      o.print(
        `    rotation left per class (RMS; mean, spread): ${r.angleByClass.map((a, c) => `${testSet.classes[c]} ${a.toFixed(0)} (${r.angleMeanByClass[c].toFixed(0)}, ${r.angleSpreadByClass[c].toFixed(0)})`).join(', ')}`,
      );
    });
    if (kind !== 'cnn') trained.push({ name, model });
  }
  const summary = {
    settings: { ...o, print: undefined, progress: undefined },
    budget,
    models: reports,
  };
  writeFileAtomic(join(o.out, 'results.json'), `${JSON.stringify(summary, null, 2)}\n`);
  if (trained.length > 0) {
    const figure = join(o.out, 'stn_rectified.png');
    await writeFigure(figure, testSet, figureIndices(testSet, 10), trained);
    o.print(`figure: ${figure}`);
  }
  o.print(`results: ${join(o.out, 'results.json')}`);
  return reports;
}

function parseNumber(flag: string, raw: string, integer: boolean, min: number): number {
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min) {
    throw new Error(
      `stn-demo: ${flag} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got '${raw}'`,
    );
  }
  return v;
}

function parseChannels(raw: string): [number, number] {
  const parts = raw.split(',').map((v) => parseNumber('--loc-channels', v, true, 1));
  if (parts.length !== 2) throw new Error(`stn-demo: --loc-channels takes two integers 'a,b', got '${raw}'`);
  return [parts[0], parts[1]];
}

interface DemoFlags {
  train: string;
  test: string;
  epochs: string;
  batchSize: string;
  lr: string;
  weightDecay: string;
  canvas: string;
  clutter: string;
  transform: string;
  stOutput: string;
  hidden: string;
  batchNorm?: boolean;
  localization: string;
  locChannels: string;
  locHidden: string;
  locLrScale: string;
  locSchedule: string;
  rotationCurriculum: string;
  equivariance: string;
  equivarianceAngle: string;
  classTurnPrior: string;
  classTemplate: string;
  models: string;
  seed: string;
  out: string;
  progress: boolean;
}

export function register(program: Command): void {
  program
    .command('stn-demo')
    .description(
      "Train a CNN, an ST-CNN and a 2xST-CNN of equal size on distorted Fashion-MNIST; print test errors, draw the transformers' crops",
    )
    .option('--train <n>', 'training images (the first n of the train split)', '12000')
    .option('--test <n>', 'test images (the first n of the test split)', '2000')
    .option('-e, --epochs <n>', 'epochs', '6')
    .option('-b, --batch-size <n>', 'batch size', '32')
    .option('--lr <x>', 'peak learning rate (AdamW, cosine decay)', '0.002')
    .option('--weight-decay <x>', 'AdamW weight decay', '0.0001')
    .option('--canvas <n>', 'canvas side: 42 (RTS) or 60 (cluttered)', '42')
    .option('--clutter <n>', 'clutter pieces per image (6x6 crops of other items)', '0')
    .option(
      '--transform <kind>',
      "affine, attention, rts, rotation or tps (st-series: the second stage's; its first is attention)",
      'rts',
    )
    .option('--st-output <n>', 'side of what each transformer samples', '28')
    .option(
      '--hidden <n>',
      "width of the ST-CNN classifier's hidden layer; the other models are sized to its parameter count",
      '48',
    )
    .option('--batch-norm', "batch norm after the classifiers' convs")
    .option(
      '--localization <kind>',
      "the transformers' localization net: conv, mlp, or moments (per-channel mass, centroid and second moments of conv features, then fc); st-series takes one per stage, e.g. conv,moments",
      'conv',
    )
    .option('--loc-channels <a,b>', "channels of the localization nets' two convs", '8,16')
    .option('--loc-hidden <n>', "width of the localization nets' fc layer", '32')
    .option('--loc-lr-scale <x>', "the localization nets' learning rate as a multiple of --lr", '1')
    .option(
      '--loc-schedule <kind>',
      "the localization nets' lr schedule: cosine (the run's) or constant (no decay)",
      'cosine',
    )
    .option(
      '--rotation-curriculum <epochs>',
      'grow the training rotations linearly to +-60 degrees over this many epochs (all models alike; the test set is always +-60)',
      '0',
    )
    .option(
      '--models <list>',
      'comma-separated subset of cnn,st,st2,st-series (an attention ST, then a --transform ST on its crop)',
      'cnn,st,st2',
    )
    .option(
      '--equivariance <w>',
      'weight of a self-supervised term for st and st-series: a turned copy of each image must get the turned transform (0: off)',
      '0',
    )
    .option('--equivariance-angle <deg>', "largest turn of the equivariance term's copies", '45')
    .option(
      '--class-turn-prior <w>',
      "weight of a prior for st and st-series: each class's turns average to zero, as the distortion's do (0: off)",
      '0',
    )
    .option(
      '--class-template <w>',
      "weight of congealing for st and st-series: each output is pulled toward its class's running mean output (0: off)",
      '0',
    )
    .option('--seed <n>', 'seed of the data, initialization and order', '0')
    .option('--no-progress', 'no progress bar')
    .requiredOption('-o, --out <dir>', 'where results.json and stn_rectified.png go')
    .action(async (flags: DemoFlags) => {
      const models = flags.models.split(',').map((m) => m.trim());
      const unknown = models.filter((m) => !(m in MODEL_HEADS));
      if (unknown.length || models.length === 0) {
        throw new Error(
          `stn-demo: --models takes a comma-separated subset of cnn,st,st2,st-series, got '${flags.models}'`,
        );
      }
      if (!TRANSFORMS.includes(flags.transform as StTransform)) {
        throw new Error(
          `stn-demo: --transform must be one of ${TRANSFORMS.join(', ')}, got '${flags.transform}'`,
        );
      }
      const localization = flags.localization.split(',').map((l) => l.trim());
      if (
        !localization.every((l) => LOCALIZATIONS.includes(l as LocalizationKind)) ||
        localization.length > 2 ||
        (localization.length === 2 && models.some((m) => m !== 'cnn' && m !== 'st-series'))
      ) {
        throw new Error(
          `stn-demo: --localization takes one of ${LOCALIZATIONS.join(', ')}, or two (one per stage) with --models cnn,st-series; got '${flags.localization}'`,
        );
      }
      if (flags.locSchedule !== 'cosine' && flags.locSchedule !== 'constant') {
        throw new Error(`stn-demo: --loc-schedule must be cosine or constant, got '${flags.locSchedule}'`);
      }
      mkdirSync(flags.out, { recursive: true });
      await runStnDemo({
        trainSize: parseNumber('--train', flags.train, true, 1),
        testSize: parseNumber('--test', flags.test, true, 1),
        epochs: parseNumber('--epochs', flags.epochs, true, 1),
        batchSize: parseNumber('--batch-size', flags.batchSize, true, 1),
        lr: parseNumber('--lr', flags.lr, false, 0),
        weightDecay: parseNumber('--weight-decay', flags.weightDecay, false, 0),
        canvas: parseNumber('--canvas', flags.canvas, true, 16),
        clutter: parseNumber('--clutter', flags.clutter, true, 0),
        transform: flags.transform as StTransform,
        stOutput: parseNumber('--st-output', flags.stOutput, true, 4),
        hidden: parseNumber('--hidden', flags.hidden, true, 1),
        batchNorm: flags.batchNorm ?? false,
        localization: localization as LocalizationKind[],
        locChannels: parseChannels(flags.locChannels),
        locHidden: parseNumber('--loc-hidden', flags.locHidden, true, 1),
        locLrScale: parseNumber('--loc-lr-scale', flags.locLrScale, false, 0),
        locSchedule: flags.locSchedule,
        rotationCurriculum: parseNumber('--rotation-curriculum', flags.rotationCurriculum, true, 0),
        equivariance: parseNumber('--equivariance', flags.equivariance, false, 0),
        equivarianceAngle: parseNumber('--equivariance-angle', flags.equivarianceAngle, false, 0),
        classTurnPrior: parseNumber('--class-turn-prior', flags.classTurnPrior, false, 0),
        classTemplate: parseNumber('--class-template', flags.classTemplate, false, 0),
        models: models as DemoModel[],
        seed: parseNumber('--seed', flags.seed, true, 0),
        out: flags.out,
        progress: flags.progress && process.stderr.isTTY === true,
        print: (line) => process.stdout.write(`${line}\n`),
      });
    });
}
