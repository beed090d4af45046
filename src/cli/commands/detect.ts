/**
 * glimpse detect IMAGE --model detr --weights FILE --out DIR [--config config.json] [--threshold 0.5]
 *
 * Runs a DETR checkpoint (Hugging Face or facebookresearch names; config.json next to the weights or
 * --config) on one image and writes DIR/detections.png (boxes, labels, and per detection the decoder
 * cross-attention of its query over the image), DIR/attention_q<Q>.png per detection, and
 * DIR/detections.json. Preprocessing follows preprocessor_config.json next to the weights when it is
 * there (Hugging Face's DetrImageProcessor fields), else DETR's: ImageNet mean/std, shorter side 800.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { readImage, writePngBytes } from '../../io/image.js';
import { writeFileAtomic } from '../../io/safetensors.js';
import { postProcessDetections, queryAttentionMaps } from '../../models/detr.js';
import { loadHfDetr } from '../../models/detr_checkpoint.js';
import { interpolate } from '../../ops/resample.js';
import { noGrad } from '../../tensor/autograd.js';
import { Tensor } from '../../tensor/tensor.js';
import { detectionFigure } from '../../vision/detection_figure.js';
import { overlayHeatmap } from '../../io/image.js';

interface DetectOptions {
  model: string;
  weights: string;
  config?: string;
  out: string;
  threshold: string;
  json?: boolean;
}

interface Preprocessing {
  resize: { shortestEdge: number; longestEdge: number } | null;
  mean: number[] | null;
  std: number[] | null;
}

const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];

function readPreprocessing(weights: string): Preprocessing {
  const path = join(dirname(weights), 'preprocessor_config.json');
  const p = existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>) : {};
  const size = (p.size ?? {}) as Record<string, number>;
  return {
    resize:
      p.do_resize === false
        ? null
        : { shortestEdge: size.shortest_edge ?? 800, longestEdge: size.longest_edge ?? 1333 },
    mean: p.do_normalize === false ? null : ((p.image_mean as number[]) ?? IMAGENET_MEAN),
    std: p.do_normalize === false ? null : ((p.image_std as number[]) ?? IMAGENET_STD),
  };
}

/** (3, H, W) in [0, 1] → the model's (1, C, H', W') input. */
function prepare(image: Tensor, channels: number, pre: Preprocessing): Tensor {
  const [, h, w] = image.shape;
  const plane = h * w;
  const data = new Float32Array(channels * plane);
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < plane; i++) {
      // A one-channel model sees the mean of R, G and B.
      const v =
        channels === 3
          ? image.data[c * plane + i]
          : (image.data[i] + image.data[plane + i] + image.data[2 * plane + i]) / 3;
      const mean = pre.mean ? pre.mean[c % pre.mean.length] : 0;
      const std = pre.std ? pre.std[c % pre.std.length] : 1;
      data[c * plane + i] = (v - mean) / std;
    }
  }
  let x = new Tensor(data, [1, channels, h, w]);
  if (pre.resize) {
    let scale = pre.resize.shortestEdge / Math.min(h, w);
    if (Math.max(h, w) * scale > pre.resize.longestEdge) scale = pre.resize.longestEdge / Math.max(h, w);
    const size: [number, number] = [Math.round(h * scale), Math.round(w * scale)];
    if (size[0] !== h || size[1] !== w) x = noGrad(() => interpolate(x, { size, mode: 'bilinear' }));
  }
  return x;
}

export function register(program: Command): void {
  program
    .command('detect')
    .description('Detect objects with DETR and show where each object query looks')
    .argument('<image>', 'JPEG, PNG or WebP file')
    .option('-m, --model <id>', 'detector family (detr)', 'detr')
    .requiredOption(
      '-w, --weights <file>',
      'DETR checkpoint (.safetensors; Hugging Face or facebookresearch names)',
    )
    .option('-c, --config <file>', 'Hugging Face config.json (default: config.json next to the weights)')
    .requiredOption('-o, --out <dir>', 'where to write detections.png, attention_q*.png and detections.json')
    .option('-t, --threshold <p>', 'keep detections whose class probability exceeds this', '0.5')
    .option('--json', 'print the detections as JSON')
    .action(async (imagePath: string, options: DetectOptions) => {
      if (options.model !== 'detr')
        throw new Error(`detect: --model '${options.model}' is not a detector; use --model detr`);
      const threshold = Number(options.threshold);
      if (!(threshold >= 0 && threshold < 1)) {
        throw new Error(`detect: --threshold must be a probability in [0, 1), got '${options.threshold}'`);
      }
      const configPath = options.config ?? join(dirname(options.weights), 'config.json');
      if (!existsSync(configPath)) {
        throw new Error(
          `detect: no config.json next to ${options.weights}; pass --config with the checkpoint's config.json`,
        );
      }
      const { model } = loadHfDetr(options.weights, configPath);
      model.eval();
      const image = await readImage(imagePath);
      const [, h, w] = image.shape;
      const x = prepare(image, model.config.numChannels, readPreprocessing(options.weights));
      const out = noGrad(() => model.forward(x, { captureAttention: true }));
      const detections = postProcessDetections(out, { threshold, targetSizes: [[h, w]] })[0];
      const [fh, fw] = out.featureSize;
      const maps = queryAttentionMaps(out.attentions?.decoderCross.at(-1) as Tensor, out.featureSize);
      const attentionOf = (q: number) =>
        new Tensor(maps.data.slice(q * fh * fw, (q + 1) * fh * fw), [fh, fw]);
      const labelOf = (c: number) => model.config.labels?.[c] ?? `class ${c}`;
      mkdirSync(options.out, { recursive: true });
      const figure = await detectionFigure(
        image,
        detections.map((d) => ({
          box: d.box,
          label: labelOf(d.label),
          score: d.score,
          attention: attentionOf(d.query),
        })),
      );
      writeFileAtomic(join(options.out, 'detections.png'), figure);
      for (const d of detections) {
        const overlay = await overlayHeatmap(image, attentionOf(d.query), { alpha: 0.6 });
        await writePngBytes(
          join(options.out, `attention_q${d.query}.png`),
          overlay.data,
          overlay.width,
          overlay.height,
        );
      }
      const report = {
        image: imagePath,
        featureSize: out.featureSize,
        detections: detections.map((d) => ({
          label: labelOf(d.label),
          class: d.label,
          score: d.score,
          box: d.box,
          query: d.query,
        })),
      };
      writeFileAtomic(join(options.out, 'detections.json'), `${JSON.stringify(report, null, 2)}\n`);
      if (options.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else if (detections.length === 0)
        process.stdout.write(`no detections above ${threshold}; wrote ${options.out}\n`);
      else {
        for (const d of report.detections) {
          process.stdout.write(
            `${d.score.toFixed(3)}  ${d.label.padEnd(14)} [${d.box.map((v) => v.toFixed(1)).join(', ')}]  query ${d.query}\n`,
          );
        }
      }
    });
}
