/**
 * `glimpse explain IMAGE... --model ID --weights FILE --method rollout|flow|grad-rollout|gradcam`:
 * overlays of where the model looks, per-layer/per-head attention grids and a JSON summary.
 * `glimpse attention-distance --model ID --weights FILE --images DIR`: the ViT paper's Fig. 7 for a
 * model on a folder of images (JSON + SVG).
 * Without --model/--config/--weights both use the embedded Fashion-MNIST ViT trained by glimpse.
 */
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import type { Command } from 'commander';
import type { HeadFusion } from '../../explain/attention.js';
import { EXPLAIN_METHODS, type ExplainMethod, explainForward } from '../../explain/explain.js';
import { attentionLayout } from '../../explain/layout.js';
// The package entry: it also installs the tensor ops the library runs on.
import {
  createModel,
  evalTransform,
  headMaps,
  type ImageClassifier,
  loadCheckpoint,
  loadHfModel,
  meanAttentionDistance,
  noGrad,
  type PretrainedConfig,
  readImage,
  Tensor,
  writeAttentionDistancePlot,
  writeMapGrid,
  writeOverlay,
} from '../../index.js';
import type { Colormap } from '../../io/image.js';
import { writeFileAtomic } from '../../io/safetensors.js';
import { interpolate } from '../../ops/resample.js';
import { loadEmbeddedModel } from '../../train/embedded.js';

interface ModelOptions {
  model?: string;
  weights?: string;
  config?: string;
  kwargs?: string;
}

/** The model from --model/--kwargs + --weights, or from a Hugging Face --config + --weights. */
async function buildModel(cmd: string, o: ModelOptions): Promise<{ model: ImageClassifier; name: string }> {
  if (!o.weights) {
    if (o.model || o.config) {
      throw new Error(
        `${cmd}: --weights FILE is required with --model/--config (explaining random weights shows nothing); drop them to use the embedded model`,
      );
    }
    // No weights at all: the embedded Fashion-MNIST ViT.
    return { model: loadEmbeddedModel(), name: 'vit_fashion (embedded)' };
  }
  if (o.config) {
    const { model } = loadHfModel(o.weights, o.config);
    model.eval();
    return { model, name: o.model ?? basename(o.config) };
  }
  if (!o.model)
    throw new Error(
      `${cmd}: --model ID is required (e.g. vit_base_patch16_224), or --config config.json for a Hugging Face checkpoint`,
    );
  let overrides: Record<string, unknown> = {};
  if (o.kwargs) {
    try {
      overrides = JSON.parse(o.kwargs) as Record<string, unknown>;
    } catch (e) {
      throw new Error(
        `${cmd}: --kwargs is not JSON (${(e as Error).message}); e.g. --kwargs '{"num_classes": 10}'`,
      );
    }
  }
  const model = createModel(o.model, overrides);
  await loadCheckpoint(model, o.weights);
  model.eval();
  return { model, name: o.model };
}

/**
 * The model's eval transform (resize, center crop) gives the picture in [0, 1] to draw on; the input
 * is that picture normalized, as gray (ITU-R 601 luma, PIL's convert('L')) for one-channel models.
 */
function prepareImage(image: Tensor, cfg: PretrainedConfig): { input: Tensor; picture: Tensor } {
  const [chans, h, w] = cfg.inputSize;
  const picture = evalTransform(image, { ...cfg, inputSize: [3, h, w], mean: [0, 0, 0], std: [1, 1, 1] });
  const plane = h * w;
  const input = new Float32Array(chans * plane);
  const p = picture.data as Float32Array;
  for (let c = 0; c < chans; c++) {
    for (let i = 0; i < plane; i++) {
      const v =
        chans === 1 ? 0.299 * p[i] + 0.587 * p[plane + i] + 0.114 * p[2 * plane + i] : p[c * plane + i];
      input[c * plane + i] = (v - cfg.mean[c]) / cfg.std[c];
    }
  }
  return { input: new Tensor(input, [1, chans, h, w]), picture };
}

/** Small inputs (Fashion-MNIST's 28 px) are enlarged by an integer factor so overlays are legible. */
function enlarge(picture: Tensor, minSide = 224): Tensor {
  const [, h, w] = picture.shape;
  const factor = Math.ceil(minSide / Math.min(h, w));
  if (factor <= 1) return picture;
  return noGrad(() =>
    interpolate(picture.reshape([1, 3, h, w]), { size: [h * factor, w * factor], mode: 'nearest' }).reshape([
      3,
      h * factor,
      w * factor,
    ]),
  );
}

function topClasses(logits: Tensor, labels: readonly string[] | undefined, k: number) {
  const z = Array.from(logits.data as Float32Array);
  const max = Math.max(...z);
  const e = z.map((v) => Math.exp(v - max));
  const total = e.reduce((a, b) => a + b, 0);
  return e
    .map((v, c) => ({ class: c, label: labels?.[c] ?? String(c), probability: v / total }))
    .sort((a, b) => b.probability - a.probability)
    .slice(0, k);
}

function parseNumber(name: string, value: string, check: (v: number) => boolean, hint: string): number {
  const v = Number(value);
  if (!Number.isFinite(v) || !check(v)) throw new Error(`explain: ${name} ${value} is invalid; ${hint}`);
  return v;
}

interface ExplainCliOptions extends ModelOptions {
  method: string;
  headFusion: string;
  discard: string;
  class?: string;
  alpha: string;
  colormap: string;
  out: string;
}

async function runExplain(images: string[], o: ExplainCliOptions): Promise<void> {
  const method = o.method as ExplainMethod;
  if (!EXPLAIN_METHODS.includes(method)) {
    throw new Error(`explain: --method ${o.method} is not one of ${EXPLAIN_METHODS.join(', ')}`);
  }
  if (!['mean', 'max', 'min'].includes(o.headFusion)) {
    throw new Error(`explain: --head-fusion ${o.headFusion} is not one of mean, max, min`);
  }
  const discardRatio = parseNumber(
    '--discard',
    o.discard,
    (v) => v >= 0 && v < 1,
    'use a fraction in [0, 1), e.g. 0.9',
  );
  if (!['inferno', 'viridis', 'jet', 'gray'].includes(o.colormap)) {
    throw new Error(`explain: --colormap ${o.colormap} is not one of inferno, viridis, jet, gray`);
  }
  const alpha = parseNumber('--alpha', o.alpha, (v) => v >= 0 && v <= 1, 'use a blend weight in [0, 1]');
  const target =
    o.class === undefined
      ? undefined
      : parseNumber('--class', o.class, Number.isInteger, 'use a class index');
  for (const path of images) {
    if (!existsSync(path)) throw new Error(`explain: image ${path} does not exist`);
  }
  const { model, name } = await buildModel('explain', o);
  if (target !== undefined && (target < 0 || target >= model.numClasses)) {
    throw new Error(`explain: --class ${target} is outside the model's ${model.numClasses} classes`);
  }
  if (target !== undefined && (method === 'rollout' || method === 'flow')) {
    throw new Error(
      `explain: --class applies to grad-rollout and gradcam; ${method} does not depend on the class`,
    );
  }
  const cfg = model.pretrainedCfg;
  // Every image is cropped to the model's input size, so one layout serves them all.
  const layout = attentionLayout(model, cfg.inputSize[1], cfg.inputSize[2]);
  if (layout.kind === 'swin' && method !== 'rollout') {
    throw new Error(
      `explain: Swin models support --method rollout (window attention has no class token for ${method})`,
    );
  }
  mkdirSync(o.out, { recursive: true });
  const summary: Record<string, unknown>[] = [];
  for (const path of images) {
    const { input, picture } = prepareImage(await readImage(path), cfg);
    const started = performance.now();
    const result = explainForward(() => model.forward(input, { captureAttention: true }), layout, {
      method,
      headFusion: o.headFusion as HeadFusion,
      discardRatio,
      target,
    });
    const seconds = (performance.now() - started) / 1000;
    const stem = basename(path, extname(path));
    const shown = enlarge(picture);
    const [, t, gh, gw] = result.maps.shape;
    const files: Record<string, unknown>[] = [];
    for (let s = 0; s < t; s++) {
      const map = new Tensor((result.maps.data as Float32Array).slice(s * gh * gw, (s + 1) * gh * gw), [
        gh,
        gw,
      ]);
      const file = `${stem}.${method}.${result.mapNames[s]}.png`;
      await writeOverlay(join(o.out, file), shown, map, { alpha, colormap: o.colormap as Colormap });
      files.push({ token: result.mapNames[s], overlay: file, map: map.toArray() });
    }
    let heads: string | undefined;
    if (layout.kind === 'tokens') {
      heads = `${stem}.heads.png`;
      const grid = headMaps(result.attentions, {
        prefixTokens: layout.prefixTokens,
        tokenIndex: layout.tokenIndex === 'mean' ? 'mean' : layout.tokenIndex[0],
        gridSize: layout.gridSize,
      });
      await writeMapGrid(join(o.out, heads), grid, {
        image: shown,
        cellSize: 96,
        alpha,
        colormap: o.colormap as Colormap,
      });
    }
    summary.push({
      image: path,
      method,
      headFusion: o.headFusion,
      discardRatio,
      explainedClass: result.targets?.[0],
      top5: topClasses(result.logits, cfg.labels, 5),
      maps: files,
      headGrid: heads,
      seconds: Number(seconds.toFixed(3)),
    });
    process.stdout.write(
      `${path}: ${files.map((f) => f.overlay).join(', ')}${heads ? `, ${heads}` : ''} (${seconds.toFixed(2)} s)\n`,
    );
  }
  writeFileAtomic(
    join(o.out, 'explain.json'),
    `${JSON.stringify({ model: name, results: summary }, null, 1)}\n`,
  );
}

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif']);

async function runAttentionDistance(
  o: ModelOptions & { images: string; out: string; limit?: string },
): Promise<void> {
  let names: string[];
  try {
    names = readdirSync(o.images)
      .filter((f) => IMAGE_EXTENSIONS.has(extname(f).toLowerCase()) && statSync(join(o.images, f)).isFile())
      .sort();
  } catch (e) {
    throw new Error(
      `attention-distance: cannot read --images ${o.images} (${(e as Error).message}); pass a folder of images`,
    );
  }
  const limit =
    o.limit === undefined
      ? names.length
      : parseNumber('--limit', o.limit, (v) => Number.isInteger(v) && v > 0, 'use a positive count');
  names = names.slice(0, limit);
  if (names.length === 0) throw new Error(`attention-distance: ${o.images} holds no JPEG/PNG/WebP images`);
  const { model, name } = await buildModel('attention-distance', o);
  const cfg = model.pretrainedCfg;
  const layout = attentionLayout(model, cfg.inputSize[1], cfg.inputSize[2]);
  if (layout.kind !== 'tokens') {
    throw new Error(
      'attention-distance: needs global attention over patch tokens (ViT, DeiT); Swin attends inside windows',
    );
  }
  let total: number[][] | null = null;
  for (const file of names) {
    const { input } = prepareImage(await readImage(join(o.images, file)), cfg);
    const { attentions } = noGrad(() => model.forward(input, { captureAttention: true }));
    const d = meanAttentionDistance(attentions, layout);
    total = total ? total.map((row, l) => row.map((v, h) => v + d[l][h])) : d;
  }
  const distances = (total as number[][]).map((row) => row.map((v) => v / names.length));
  mkdirSync(o.out, { recursive: true });
  const { patchSize, gridSize, prefixTokens } = layout;
  writeFileAtomic(
    join(o.out, 'attention_distance.json'),
    `${JSON.stringify({ model: name, images: names.length, patchSize, gridSize, prefixTokens, distances }, null, 1)}\n`,
  );
  writeAttentionDistancePlot(join(o.out, 'attention_distance.svg'), distances, {
    title: `${name}: mean attention distance (${names.length} images)`,
  });
  process.stdout.write(
    `${join(o.out, 'attention_distance.svg')}, ${join(o.out, 'attention_distance.json')}\n`,
  );
}

function modelOptions(cmd: Command): Command {
  return cmd
    .option('--model <id>', 'registered model id (timm names, e.g. vit_base_patch16_224)')
    .option(
      '--weights <file>',
      'safetensors checkpoint (timm, Hugging Face or torchvision names); without it, the embedded Fashion-MNIST ViT',
    )
    .option('--config <file>', 'a Hugging Face config.json: build the model from it (instead of --model)')
    .option('--kwargs <json>', 'architecture overrides for --model, e.g. \'{"num_classes": 10}\'');
}

export function register(program: Command): void {
  modelOptions(
    program
      .command('explain')
      .description(
        'Where a model looks: attention rollout, attention flow, gradient rollout or token Grad-CAM overlays',
      )
      .argument('<images...>', 'image files (JPEG, PNG, WebP)'),
  )
    .option('--method <method>', EXPLAIN_METHODS.join(' | '), 'rollout')
    .option('--head-fusion <fusion>', 'mean | max | min (rollout, flow)', 'mean')
    .option(
      '--discard <ratio>',
      'fraction of the lowest fused weights dropped per layer (rollout, flow)',
      '0',
    )
    .option('--class <k>', 'class explained by grad-rollout / gradcam (default: the predicted one)')
    .option('--alpha <a>', 'heatmap weight in the overlay', '0.55')
    .option('--colormap <name>', 'inferno | viridis | jet | gray', 'inferno')
    .requiredOption('--out <dir>', 'output folder for the PNGs and explain.json')
    .action(async (images: string[], o: ExplainCliOptions) => runExplain(images, o));

  modelOptions(
    program
      .command('attention-distance')
      .description(
        "Mean attention distance per head and layer over a folder of images (the ViT paper's Fig. 7)",
      ),
  )
    .requiredOption('--images <dir>', 'folder of images')
    .option('--limit <n>', 'use at most this many images (sorted by name)')
    .requiredOption('--out <dir>', 'output folder for attention_distance.svg and .json')
    .action(async (o: ModelOptions & { images: string; out: string; limit?: string }) =>
      runAttentionDistance(o),
    );
}
