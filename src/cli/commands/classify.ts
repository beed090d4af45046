/**
 * glimpse classify IMAGE... [--model ID --weights FILE | --config config.json --weights FILE]
 *   [--embedded vit_fashion|deit_fashion_distilled] [--top 5] [--json]
 * Without --weights it runs the embedded Fashion-MNIST ViT trained by glimpse.
 */
import type { Command } from 'commander';
import { type ImageClassifier, loadCheckpoint, loadHfModel } from '../../models/index.js';
import { createModel, listModels } from '../../models/registry.js';
import { preprocessImages } from '../../models/preprocess.js';
import { softmax } from '../../ops/normalization.js';
import { Tensor } from '../../tensor/tensor.js';
import { noGrad } from '../../tensor/autograd.js';
import { EMBEDDED_MODELS, type EmbeddedModelName, loadEmbeddedModel } from '../../train/embedded.js';

interface ClassifyOptions {
  model?: string;
  weights?: string;
  embedded?: string;
  config?: string;
  top: string;
  json?: boolean;
}

interface Prediction {
  image: string;
  top: Array<{ class: number; label: string | null; probability: number }>;
}

/** The model with its checkpoint loaded, and what loading noted (resampled position embeddings...). */
async function buildModel(options: ClassifyOptions): Promise<{ model: ImageClassifier; notes: string[] }> {
  if (!options.weights) {
    if (options.model || options.config) {
      throw new Error(
        'classify: --model and --config need --weights FILE (or drop them to use the embedded model)',
      );
    }
    const name = (options.embedded ?? 'vit_fashion') as EmbeddedModelName;
    if (!EMBEDDED_MODELS.includes(name)) {
      throw new Error(`classify: --embedded must be one of ${EMBEDDED_MODELS.join(', ')}, got '${name}'`);
    }
    return { model: loadEmbeddedModel(name), notes: [`no --weights: the embedded ${name} (Fashion-MNIST)`] };
  }
  if (options.config) {
    const { model, report } = loadHfModel(options.weights, options.config);
    return { model, notes: report.notes };
  }
  if (!options.model) {
    throw new Error(
      `classify: pass --model ID (one of ${listModels().slice(0, 3).join(', ')}, ...) or --config config.json of a Hugging Face checkpoint`,
    );
  }
  // The checkpoint replaces every weight: skip the random init.
  const model = createModel(options.model, { weight_init: 'skip' });
  const report = await loadCheckpoint(model, options.weights);
  return { model, notes: report.notes };
}

/**
 * (B, 3, H, W) normalized images as the model's channels: one-channel models get ITU-R 601 luma
 * (PIL's convert('L'), how Fashion-MNIST's gray images relate to color ones).
 */
function toModelChannels(batch: Tensor, channels: number): Tensor {
  if (channels === 3) return batch;
  if (channels !== 1) throw new Error(`classify: models with ${channels} input channels are not supported`);
  const [B, , H, W] = batch.shape;
  const plane = H * W;
  const src = batch.data as Float32Array;
  const out = new Float32Array(B * plane);
  for (let b = 0; b < B; b++) {
    const o = b * 3 * plane;
    for (let i = 0; i < plane; i++) {
      out[b * plane + i] = 0.299 * src[o + i] + 0.587 * src[o + plane + i] + 0.114 * src[o + 2 * plane + i];
    }
  }
  return new Tensor(out, [B, 1, H, W]);
}

export function register(program: Command): void {
  program
    .command('classify')
    .description('Classify images with a zoo model and a timm / Hugging Face / torchvision checkpoint')
    .argument('<images...>', 'JPEG, PNG or WebP files')
    .option('-m, --model <id>', 'timm model id, e.g. vit_base_patch16_224')
    .option(
      '-w, --weights <file>',
      'checkpoint (.safetensors; F32, F16 or BF16); without it, the embedded model',
    )
    .option('--embedded <name>', `embedded model when no --weights: ${EMBEDDED_MODELS.join(' or ')}`)
    .option('-c, --config <file>', 'Hugging Face config.json: builds the model from it (instead of --model)')
    .option('-k, --top <n>', 'how many classes to show per image', '5')
    .option('--json', 'print JSON instead of a table')
    .action(async (images: string[], options: ClassifyOptions) => {
      const k = Number(options.top);
      if (!Number.isInteger(k) || k < 1)
        throw new Error(`classify: --top must be a positive integer, got '${options.top}'`);
      const { model, notes } = await buildModel(options);
      if (!options.json) for (const note of notes) process.stderr.write(`note: ${note}\n`);
      model.eval();
      const cfg = model.pretrainedCfg;
      const batch = toModelChannels(await preprocessImages(images, cfg), cfg.inputSize[0]);
      const probs = noGrad(() => softmax(model.forward(batch), -1));
      const classes = probs.shape[1];
      const predictions: Prediction[] = images.map((image, b) => {
        const row = Array.from(probs.data.subarray(b * classes, (b + 1) * classes) as Float32Array);
        const order = row
          .map((p, c) => [p, c] as const)
          .sort((x, y) => y[0] - x[0])
          .slice(0, Math.min(k, classes));
        return {
          image,
          top: order.map(([p, c]) => ({ class: c, label: cfg.labels?.[c] ?? null, probability: p })),
        };
      });
      if (options.json) {
        process.stdout.write(`${JSON.stringify(predictions, null, 2)}\n`);
        return;
      }
      for (const p of predictions) {
        process.stdout.write(`${p.image}\n`);
        for (const t of p.top) {
          const label = t.label ?? `class ${t.class}`;
          process.stdout.write(
            `  ${(100 * t.probability).toFixed(2).padStart(6)}%  ${String(t.class).padStart(4)}  ${label}\n`,
          );
        }
      }
    });
}
