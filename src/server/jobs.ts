/**
 * What a worker does for each API call, given a loaded model and the request's image bytes: classify,
 * explain (every layer's map, every head's attention), mean attention distance, Itti-Koch saliency
 * with its scanpath. Results are plain JSON (maps as number arrays, pictures as PNG data URLs).
 */
import sharp from 'sharp';
import { attentionFlow } from '../explain/flow.js';
import { attentionGradients, gradRollout, tokenGradCam } from '../explain/gradient.js';
import { meanAttentionDistance } from '../explain/distance.js';
import { headMaps } from '../explain/render.js';
import { attentionRollout } from '../explain/rollout.js';
import { swinRollout } from '../explain/swin.js';
import { encodePng, overlayHeatmap, readImage, toRgbBytes } from '../io/image.js';
import { softmax } from '../ops/normalization.js';
import { heatmap } from '../saliency/render.js';
import { type Channel, ittiSaliency } from '../saliency/itti.js';
import { defaultIorRadius, scanpath } from '../saliency/scanpath.js';
import { noGrad } from '../tensor/autograd.js';
import { Tensor } from '../tensor/tensor.js';
import { type LoadedModel, modelInput } from './model_loader.js';
import { BadRequest } from './errors.js';
import type {
  ClassifyJob,
  ClassifyResult,
  DistanceJob,
  DistanceResult,
  ExplainJob,
  ExplainResult,
  SaliencyJob,
  SaliencyMap,
  SaliencyResult,
  TopClass,
} from './protocol.js';

/** Above this many tokens attention flow runs once (all layers) instead of once per layer depth. */
const FLOW_PER_LAYER_MAX_TOKENS = 100;
/** Images smaller than this on their longer side are enlarged for saliency (its pyramid has 9 levels). */
const SALIENCY_MIN_SIZE = 256;

async function decode(bytes: Uint8Array): Promise<Tensor> {
  try {
    return await readImage(bytes);
  } catch (e) {
    throw new BadRequest((e as Error).message);
  }
}

async function pngDataUrl(rgb: { data: Uint8Array; width: number; height: number }): Promise<string> {
  const png = await encodePng(rgb.data, rgb.width, rgb.height);
  return `data:image/png;base64,${Buffer.from(png).toString('base64')}`;
}

const round = (v: number, digits = 4) => Number(v.toFixed(digits));

function topClasses(logits: Tensor, labels: readonly string[] | undefined, k: number): TopClass[] {
  const probs = noGrad(() => softmax(logits, -1)).data as Float32Array;
  return Array.from(probs, (p, c) => ({ class: c, label: labels?.[c] ?? `class ${c}`, probability: p }))
    .sort((a, b) => b.probability - a.probability)
    .slice(0, k)
    .map((t) => ({ ...t, probability: round(t.probability, 6) }));
}

/** One image's maps (T, gh, gw) as T row-major arrays. */
function mapRows(maps: Tensor, digits = 3): number[][] {
  const [, t, gh, gw] = maps.shape;
  const plane = gh * gw;
  const data = maps.data as Float32Array;
  return Array.from({ length: t }, (_, s) =>
    Array.from(data.subarray(s * plane, (s + 1) * plane), (v) => round(v, digits)),
  );
}

export async function classify(m: LoadedModel, job: ClassifyJob, bytes: Uint8Array): Promise<ClassifyResult> {
  const started = performance.now();
  const { input, picture } = modelInput(await decode(bytes), m.model.pretrainedCfg);
  const logits = noGrad(() => m.model.forward(input));
  return {
    model: m.spec.id,
    top: topClasses(logits, m.model.pretrainedCfg.labels, job.top),
    picture: await pngDataUrl(toRgbBytes(picture)),
    ms: round(performance.now() - started, 1),
  };
}

function requireAttention(m: LoadedModel, what: string) {
  if (!m.layout) {
    throw new BadRequest(
      `${what}: model '${m.spec.id}' (${m.model.family}) has no attention maps; use a ViT, DeiT or Swin model`,
    );
  }
  return m.layout;
}

export async function explain(m: LoadedModel, job: ExplainJob, bytes: Uint8Array): Promise<ExplainResult> {
  const started = performance.now();
  const layout = requireAttention(m, 'explain');
  if (!m.description.methods.includes(job.method)) {
    throw new BadRequest(
      `explain: method '${job.method}' does not apply to ${m.model.family} models; use ${m.description.methods.join(', ')}`,
    );
  }
  const cfg = m.model.pretrainedCfg;
  const { input, picture } = modelInput(await decode(bytes), cfg);
  const forward = () => m.model.forward(input, { captureAttention: true });
  const fusion = { headFusion: job.headFusion, discardRatio: job.discardRatio };
  let logits: Tensor;
  let target: number | null = null;
  const layers: number[] = [];
  const maps: number[][][] = [];
  let heads: number[][][] | null = null;
  if (layout.kind === 'swin') {
    const captured = noGrad(forward);
    logits = captured.logits;
    const r = swinRollout(captured.attentions, { ...layout, ...fusion });
    const [, gh, gw] = r.map.shape;
    layers.push(captured.attentions.length);
    maps.push(mapRows(r.map.reshape([1, 1, gh, gw])));
  } else {
    const tokenOptions = {
      prefixTokens: layout.prefixTokens,
      tokenIndex: layout.tokenIndex,
      gridSize: layout.gridSize,
    };
    let attentions: Tensor[];
    if (job.method === 'rollout' || job.method === 'flow') {
      const captured = noGrad(forward);
      logits = captured.logits;
      attentions = captured.attentions;
      const depth = attentions.length;
      const tokens = attentions[0].shape[2];
      const first = job.method === 'flow' && tokens > FLOW_PER_LAYER_MAX_TOKENS ? depth : 1;
      const explainer = job.method === 'rollout' ? attentionRollout : attentionFlow;
      for (let l = first; l <= depth; l++) {
        layers.push(l);
        maps.push(mapRows(explainer(attentions.slice(0, l), { ...tokenOptions, ...fusion }).maps));
      }
    } else {
      if (job.target !== undefined && job.target >= m.model.numClasses) {
        throw new BadRequest(
          `explain: class ${job.target} is outside the model's ${m.model.numClasses} classes`,
        );
      }
      const g = attentionGradients(forward, job.target);
      logits = g.logits.detach();
      attentions = g.attentions;
      target = g.targets[0];
      for (let l = 1; l <= attentions.length; l++) {
        layers.push(l);
        const r =
          job.method === 'grad-rollout'
            ? gradRollout(attentions.slice(0, l), g.gradients.slice(0, l), tokenOptions)
            : tokenGradCam(attentions, g.gradients, { ...tokenOptions, layer: l - 1 });
        maps.push(mapRows(r.maps));
      }
    }
    if (job.heads) {
      const grid = headMaps(attentions, {
        prefixTokens: layout.prefixTokens,
        tokenIndex: layout.tokenIndex === 'mean' ? 'mean' : layout.tokenIndex[0],
        gridSize: layout.gridSize,
      });
      const [depth, perLayer, hh, hw] = grid.shape;
      const rows = mapRows(grid.reshape([1, depth * perLayer, hh, hw]));
      heads = Array.from({ length: depth }, (_, l) => rows.slice(l * perLayer, (l + 1) * perLayer));
    }
  }
  const [gh, gw] = layout.gridSize;
  let overlay: string | null = null;
  if (job.png) {
    const last = new Tensor(Float32Array.from(maps[maps.length - 1][0]), [gh, gw]);
    overlay = await pngDataUrl(await overlayHeatmap(picture, last));
  }
  return {
    model: m.spec.id,
    top: topClasses(logits, cfg.labels, job.top),
    picture: await pngDataUrl(toRgbBytes(picture)),
    method: job.method,
    target,
    gridSize: [gh, gw],
    tokenNames: m.description.attention?.tokenNames ?? [],
    layers,
    maps,
    heads,
    overlay,
    ms: round(performance.now() - started, 1),
  };
}

export async function attentionDistance(
  m: LoadedModel,
  _job: DistanceJob,
  bytes: Uint8Array,
): Promise<DistanceResult> {
  const started = performance.now();
  const layout = requireAttention(m, 'attention-distance');
  if (layout.kind !== 'tokens') {
    throw new BadRequest(
      `attention-distance: needs global attention over patch tokens (ViT, DeiT); '${m.spec.id}' attends inside windows`,
    );
  }
  const { input } = modelInput(await decode(bytes), m.model.pretrainedCfg);
  const { attentions } = noGrad(() => m.model.forward(input, { captureAttention: true }));
  const distances = meanAttentionDistance(attentions, layout).map((row) => row.map((d) => round(d, 3)));
  return {
    model: m.spec.id,
    distances,
    patchSize: layout.patchSize,
    gridSize: layout.gridSize,
    ms: round(performance.now() - started, 1),
  };
}

const CHANNELS: Channel[] = ['intensity', 'color', 'orientation'];

export async function saliency(job: SaliencyJob, bytes: Uint8Array): Promise<SaliencyResult> {
  const started = performance.now();
  let meta: { width?: number; height?: number };
  try {
    meta = await sharp(bytes).metadata();
  } catch (e) {
    throw new BadRequest(
      `image data is not a readable image (${(e as Error).message}); use a JPEG, PNG or WebP file`,
    );
  }
  const longer = Math.max(meta.width ?? 1, meta.height ?? 1);
  const side = Math.min(job.maxSize, Math.max(longer, SALIENCY_MIN_SIZE));
  let resized: Uint8Array = bytes;
  if (side !== longer) {
    // Small images (Fashion-MNIST's 28 px) keep their pixels visible; large ones shrink smoothly.
    const kernel = side > longer ? sharp.kernel.nearest : sharp.kernel.lanczos3;
    const buf = await sharp(bytes).rotate().resize(side, side, { fit: 'inside', kernel }).png().toBuffer();
    resized = new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
  }
  const image = await decode(resized);
  const result = ittiSaliency(image);
  const fixations = scanpath(result, { fixations: job.fixations });
  const values = (map: Tensor): number[] => Array.from(map.data as Float32Array, (v) => round(v, 4));
  const common = Math.max(...CHANNELS.flatMap((c) => Array.from(result.conspicuity[c].data as Float32Array)));
  const rendered = async (map: Tensor, max?: number): Promise<SaliencyMap> => ({
    values: values(map),
    png: job.png ? await pngDataUrl(heatmap(result, map, { max })) : null,
  });
  const conspicuity = {} as Record<Channel, SaliencyMap>;
  for (const c of CHANNELS) conspicuity[c] = await rendered(result.conspicuity[c], common);
  const [mh, mw] = result.saliency.shape;
  return {
    width: result.width,
    height: result.height,
    picture: await pngDataUrl(toRgbBytes(image)),
    scale: result.scale,
    mapSize: [mh, mw],
    saliency: await rendered(result.saliency),
    conspicuity,
    fixations: fixations.map((f) => ({
      x: round(f.x, 1),
      y: round(f.y, 1),
      t: round(f.t, 1),
      feature: f.feature,
      map: f.map,
    })),
    iorRadius: defaultIorRadius(result.width, result.height),
    ms: round(performance.now() - started, 1),
  };
}
