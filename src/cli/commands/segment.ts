/**
 * glimpse segment IMAGE|VOLUME --weights FILE --out DIR [--model transunet|unetr] [--overlap 0.25]
 *   [--blend gaussian|constant] [--sw-batch 4] [--intensity-range MIN,MAX] [--config JSON]
 * glimpse segment-train --preset fashion2d|shapes3d --out DIR [--epochs N] [--train-size N] [--test-size N] [--seed N]
 *
 * Images (PNG/JPEG/WebP) go to a 2D model, volumes (.npy, .nii, .nii.gz, .safetensors) to a 3D one;
 * inputs of another size than the model's are segmented with sliding windows. Writes labels.npy,
 * the colored mask and overlay (2D) or orthogonal slices with overlays (3D), labels.nii.gz for a
 * NIfTI input, and summary.json (pixel/voxel count and share per class).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { readImage } from '../../io/image.js';
import { div, sub } from '../../ops/elementwise.js';
import {
  loadSegmentationCheckpoint,
  modelInChannels,
  modelInputSize,
  predictLabels,
  type SegmentationModelKind,
} from '../../segment/model.js';
import {
  busiestSlices,
  classColor,
  overlayLabels,
  sliceOverlays,
  tilePictures,
  writePicture,
} from '../../segment/render.js';
import { slidingWindowInference } from '../../segment/sliding_window.js';
import { SEGMENT_PRESETS, trainSegmentation } from '../../segment/train.js';
import { readVolume, writeNiftiLabels, writeNpyUint8 } from '../../segment/volume_io.js';
import { noGrad } from '../../tensor/autograd.js';
import { Tensor } from '../../tensor/tensor.js';

interface SegmentFlags {
  model?: string;
  weights: string;
  out: string;
  overlap: string;
  blend: string;
  swBatch: string;
  intensityRange?: string;
  config?: string;
}

const VOLUME_EXT = /\.(npy|nii|nii\.gz|safetensors)$/i;

function number(flag: string, raw: string, ok: (v: number) => boolean, want: string): number {
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || !ok(v))
    throw new Error(`segment: ${flag} must be ${want}, got '${raw}'`);
  return v;
}

/** (C, ...spatial) input values → (1, inChannels, ...spatial), channels averaged or repeated to fit. */
function fitChannels(data: Float32Array, channels: number, spatial: number[], want: number): Tensor {
  const plane = spatial.reduce((a, b) => a * b, 1);
  const out = new Float32Array(want * plane);
  if (channels === want) out.set(data.subarray(0, want * plane));
  else if (want === 1) {
    for (let c = 0; c < channels; c++)
      for (let i = 0; i < plane; i++) out[i] += data[c * plane + i] / channels;
  } else if (channels === 1) {
    for (let c = 0; c < want; c++) out.set(data.subarray(0, plane), c * plane);
  } else {
    throw new Error(`segment: the input has ${channels} channels but the model takes ${want}`);
  }
  return new Tensor(out, [1, want, ...spatial]);
}

async function segment(input: string, flags: SegmentFlags): Promise<void> {
  const overlap = number('--overlap', flags.overlap, (v) => v >= 0 && v < 1, 'in [0, 1)');
  const swBatchSize = number(
    '--sw-batch',
    flags.swBatch,
    (v) => Number.isInteger(v) && v > 0,
    'a positive integer',
  );
  if (flags.blend !== 'gaussian' && flags.blend !== 'constant') {
    throw new Error(`segment: --blend must be 'gaussian' or 'constant', got '${flags.blend}'`);
  }
  if (flags.model && flags.model !== 'transunet' && flags.model !== 'unetr') {
    throw new Error(`segment: --model must be transunet or unetr, got '${flags.model}'`);
  }
  let range: [number, number] | null = null;
  if (flags.intensityRange) {
    const parts = flags.intensityRange.split(',').map(Number);
    if (parts.length !== 2 || !parts.every(Number.isFinite) || !(parts[1] > parts[0])) {
      throw new Error(
        `segment: --intensity-range must be MIN,MAX with MIN < MAX, got '${flags.intensityRange}'`,
      );
    }
    range = [parts[0], parts[1]];
  }
  let config: Record<string, unknown> | undefined;
  if (flags.config) {
    try {
      config = JSON.parse(flags.config);
    } catch (e) {
      throw new Error(`segment: --config is not JSON (${(e as Error).message})`);
    }
  }
  const { model, info, notes } = loadSegmentationCheckpoint(flags.weights, {
    kind: flags.model as SegmentationModelKind | undefined,
    config,
  });
  for (const note of notes) process.stderr.write(`note: ${note}\n`);
  const roi = modelInputSize(model);
  const is3d = roi.length === 3;
  if (VOLUME_EXT.test(input) !== is3d) {
    throw new Error(
      `segment: ${input} is ${is3d ? 'an image' : 'a volume'} but the ${info.kind} model in ${flags.weights} is ${is3d ? '3D (give a .npy/.nii/.nii.gz/.safetensors volume)' : '2D (give an image)'}`,
    );
  }
  let data: Float32Array;
  let channels: number;
  let spatial: number[];
  let volume: ReturnType<typeof readVolume> | null = null;
  if (is3d) {
    volume = readVolume(input);
    const s = volume.shape;
    if (s.length !== 3 && s.length !== 4)
      throw new Error(`segment: ${input} has shape [${s}]; expected (D, H, W) or (C, D, H, W)`);
    channels = s.length === 4 ? s[0] : 1;
    spatial = s.slice(-3);
    data = volume.data;
  } else {
    const img = await readImage(input);
    channels = 3;
    spatial = img.shape.slice(1);
    data = img.data as Float32Array;
  }
  if (range) {
    const [lo, hi] = range;
    data = Float32Array.from(data, (v) => Math.min(1, Math.max(0, (v - lo) / (hi - lo))));
  }
  const x = fitChannels(data, channels, spatial, modelInChannels(model));
  const normalized = noGrad(() => div(sub(x, info.mean), info.std));
  const fits = spatial.every((s, i) => s === roi[i]);
  const started = performance.now();
  const logits = noGrad(() =>
    fits
      ? model.forward(normalized)
      : slidingWindowInference(normalized, (w) => model.forward(w), {
          roiSize: roi,
          overlap,
          mode: flags.blend as 'gaussian',
          swBatchSize,
        }),
  );
  const seconds = (performance.now() - started) / 1000;
  const labels = predictLabels(logits);
  mkdirSync(flags.out, { recursive: true });
  writeNpyUint8(join(flags.out, 'labels.npy'), labels, spatial);
  const counts = new Array<number>(info.classes.length).fill(0);
  for (const k of labels) counts[k]++;
  const gray = x.data.subarray(
    0,
    spatial.reduce((a, b) => a * b, 1),
  ) as Float32Array;
  if (is3d) {
    const shape = spatial as [number, number, number];
    const at = busiestSlices(labels, shape);
    const scale = Math.max(1, Math.round(256 / Math.max(...shape)));
    await writePicture(
      join(flags.out, 'slices.png'),
      tilePictures(sliceOverlays(gray, [null, labels], shape, at, { scale }), 3),
    );
    if (volume?.niftiHeader)
      writeNiftiLabels(join(flags.out, 'labels.nii.gz'), labels, shape, volume.niftiHeader);
  } else {
    const [h, w] = spatial;
    const scale = Math.max(1, Math.round(256 / Math.max(h, w)));
    await writePicture(
      join(flags.out, 'overlay.png'),
      overlayLabels(gray, labels, h, w, { scale, range: [0, 1] }),
    );
    const colored = new Uint8Array(3 * h * w);
    labels.forEach((k, i) => {
      if (k > 0) colored.set(classColor(k), 3 * i);
    });
    await writePicture(join(flags.out, 'mask.png'), { data: colored, width: w, height: h });
  }
  const total = labels.length;
  const summary = {
    input,
    model: info.kind,
    shape: spatial,
    slidingWindow: fits ? null : { roiSize: roi, overlap, blend: flags.blend },
    seconds,
    classes: info.classes.map((name, k) => ({
      class: k,
      name,
      color: k > 0 ? classColor(k) : null,
      count: counts[k],
      share: counts[k] / total,
      ...(volume?.spacing ? { volume: counts[k] * volume.spacing.reduce((a, b) => a * b, 1) } : {}),
    })),
  };
  writeFileSync(join(flags.out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  const found = summary.classes.filter((c) => c.class > 0 && c.count > 0);
  process.stdout.write(
    `${input}: ${found.length ? found.map((c) => `${c.name} ${(100 * c.share).toFixed(1)}%`).join(', ') : 'background only'} (${seconds.toFixed(1)} s${fits ? '' : ', sliding window'}); wrote ${flags.out}\n`,
  );
}

export function register(program: Command): void {
  program
    .command('segment')
    .description('Segment an image (TransUNet) or a volume (UNETR) with a trained checkpoint')
    .argument('<input>', 'PNG/JPEG/WebP image, or .npy/.nii/.nii.gz/.safetensors volume')
    .requiredOption(
      '-w, --weights <file>',
      'checkpoint: glimpse segment-train output, MONAI UNETR or TransUNet state dict (.safetensors)',
    )
    .requiredOption('-o, --out <dir>', 'output directory')
    .option('-m, --model <kind>', 'transunet or unetr (checked against the checkpoint)')
    .option('--overlap <f>', 'sliding-window overlap for inputs larger than the model', '0.25')
    .option('--blend <mode>', 'sliding-window blending: gaussian or constant', 'gaussian')
    .option('--sw-batch <n>', 'windows per forward pass', '4')
    .option(
      '--intensity-range <min,max>',
      'scale input values from [min, max] to [0, 1] first (e.g. CT: -175,250)',
    )
    .option('--config <json>', 'model config overrides for a bare MONAI/TransUNet state dict')
    .action((input: string, flags: SegmentFlags) => segment(input, flags));

  program
    .command('segment-train')
    .description(
      `Train a segmentation preset (${Object.entries(SEGMENT_PRESETS)
        .map(([name, p]) => `${name}: ${p.model}`)
        .join(', ')})`,
    )
    .requiredOption('-p, --preset <name>', Object.keys(SEGMENT_PRESETS).join(' or '))
    .requiredOption('-o, --out <dir>', 'run directory (log.jsonl, model.safetensors, metrics.json)')
    .option('--epochs <n>', 'epochs (default: the preset)')
    .option('--train-size <n>', 'training samples (default: the preset)')
    .option('--test-size <n>', 'test samples (default: the preset)')
    .option('--seed <n>', 'seed of data and initialization', '0')
    .option('--init <file>', 'start from the weights of this segmentation checkpoint (fresh schedule)')
    .option('--lr <f>', 'peak learning rate (default: the preset)')
    .action(
      async (flags: {
        preset: string;
        out: string;
        epochs?: string;
        trainSize?: string;
        testSize?: string;
        seed: string;
        init?: string;
        lr?: string;
      }) => {
        const int = (flag: string, raw: string | undefined) =>
          raw === undefined
            ? undefined
            : number(flag, raw, (v) => Number.isInteger(v) && v > 0, 'a positive integer');
        await trainSegmentation(flags.preset, {
          out: flags.out,
          epochs: int('--epochs', flags.epochs),
          trainSize: int('--train-size', flags.trainSize),
          testSize: int('--test-size', flags.testSize),
          init: flags.init,
          lr:
            flags.lr === undefined ? undefined : number('--lr', flags.lr, (v) => v > 0, 'a positive number'),
          seed: number('--seed', flags.seed, (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer'),
          log: (line) => process.stderr.write(`${line}\n`),
        });
      },
    );
}
