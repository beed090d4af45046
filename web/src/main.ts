/**
 * The explorer page: pick or drop an image; the server classifies it, explains where the model looks
 * (every layer, every head), measures how far its heads look, and runs the Itti-Koch saliency model.
 * Plain TypeScript over the DOM; all state lives in `state` and every panel redraws from it.
 */
import './styles.css';
import {
  ApiError,
  api,
  type DistanceResult,
  type EpochRecord,
  type ExplainMethod,
  type ExplainResult,
  type ImageRef,
  type ModelDescription,
  type SaliencyResult,
  type SampleEntry,
} from './api.js';
import { chart } from './charts.js';
import { drawOverlay, loadImage, setColormaps } from './heatmap.js';
import { drawScanpath } from './scanpath.js';

type SaliencyView = 'saliency' | 'intensity' | 'color' | 'orientation';

interface CurrentImage {
  ref: ImageRef;
  title: string;
  /** the Fashion-MNIST class of a Fashion-MNIST sample */
  label?: number;
}

const state = {
  models: [] as ModelDescription[],
  model: null as ModelDescription | null,
  samples: [] as SampleEntry[],
  image: null as CurrentImage | null,
  method: 'rollout' as ExplainMethod,
  /** index into explain.layers */
  layer: 0,
  token: 0,
  alpha: 0.6,
  explain: null as ExplainResult | null,
  explainPicture: null as HTMLImageElement | null,
  saliency: null as SaliencyResult | null,
  saliencyPicture: null as HTMLImageElement | null,
  saliencyView: 'saliency' as SaliencyView,
  /** bumps on every new image or model, so late answers for an old one are dropped */
  generation: 0,
  timings: {} as Record<string, number>,
};

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: Array<Node | string>
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

const METHOD_NAMES: Record<ExplainMethod, string> = {
  rollout: 'Rollout',
  flow: 'Flow',
  'grad-rollout': 'Grad rollout',
  gradcam: 'Grad-CAM',
};

const METHOD_CAPTIONS: Record<ExplainMethod, string> = {
  rollout:
    "Attention rollout (Abnar & Zuidema 2020): the product of layers 1..l of attention, each with the residual path added and rows renormalized; the class token's row over the patches.",
  flow: 'Attention flow (Abnar & Zuidema 2020): the maximum flow from the class token through the attention graph of layers 1..l down to each patch.',
  'grad-rollout':
    "Gradient-weighted rollout (Chefer, Gur & Wolf 2021): rollout of each layer's attention weighted by its positive gradient for the explained class.",
  gradcam:
    'Grad-CAM on attention: the heads of layer l weighted by the mean gradient of the explained class; one layer, not a product over layers.',
};

function setStatus(text: string, busy = false): void {
  const status = $('status');
  status.textContent = text;
  status.classList.toggle('busy', busy);
}

function showTimings(): void {
  const parts = Object.entries(state.timings).map(
    ([k, ms]) => `${k} ${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`,
  );
  setStatus(parts.join(' · '));
}

function panelError(container: HTMLElement, error: unknown): void {
  container.replaceChildren(
    el('p', { class: 'error' }, error instanceof Error ? error.message : String(error)),
  );
}

// ---------------------------------------------------------------------------------------------
// Predictions

function renderPredictions(result: { top: ExplainResult['top']; picture: string }): void {
  ($('model-picture') as HTMLImageElement).src = result.picture;
  const list = $('predictions');
  list.replaceChildren(
    ...result.top.map((t, rank) => {
      const truth = state.image?.label === t.class;
      const bar = el('span', { class: 'bar' });
      bar.style.width = `${Math.max(0.5, t.probability * 100)}%`;
      return el(
        'li',
        { class: `${rank === 0 ? 'top ' : ''}${truth ? 'truth' : ''}`.trim() },
        el('span', { class: 'label' }, t.label, truth ? el('span', { class: 'tag' }, 'true') : ''),
        el('span', { class: 'track' }, bar),
        el('span', { class: 'value' }, `${(t.probability * 100).toFixed(1)}%`),
      );
    }),
  );
  const model = state.model;
  $('predictions-hint').textContent = model ? `top ${result.top.length} of ${model.numClasses} classes` : '';
}

// ---------------------------------------------------------------------------------------------
// Explanations

function renderMethodTabs(): void {
  const tabs = $('method-tabs');
  const methods = state.model?.methods ?? [];
  tabs.replaceChildren(
    ...methods.map((m) => {
      const button = el('button', { type: 'button', role: 'tab', 'data-method': m }, METHOD_NAMES[m]);
      button.setAttribute('aria-selected', String(m === state.method));
      button.addEventListener('click', () => {
        if (state.method === m || !state.image) return;
        state.method = m;
        renderMethodTabs();
        runExplain(state.generation);
      });
      return button;
    }),
  );
}

function renderExplain(): void {
  const r = state.explain;
  const picture = state.explainPicture;
  const canvas = $('explain-canvas') as HTMLCanvasElement;
  const slider = $('layer-slider') as HTMLInputElement;
  if (!r || !picture) return;
  const layers = r.layers;
  state.layer = Math.min(state.layer, layers.length - 1);
  slider.max = String(layers.length - 1);
  slider.value = String(state.layer);
  slider.disabled = layers.length < 2;
  const l = layers[state.layer];
  const depth = state.model?.attention?.layers ?? l;
  const through = r.method === 'gradcam' ? `layer ${l} of ${depth}` : `layers 1-${l} of ${depth}`;
  $('layer-label').textContent =
    layers.length < 2 ? `${through} (only the full depth for this model)` : through;
  const [gh, gw] = r.gridSize;
  const token = Math.min(state.token, r.tokenNames.length - 1);
  const values = r.maps[state.layer][token];
  drawOverlay(canvas, picture, { values, rows: gh, cols: gw }, { width: 320, alpha: state.alpha });
  canvas.dataset.method = r.method;
  canvas.dataset.layer = String(l);
  const target =
    r.target !== null ? ` Explains class ${r.top.find((t) => t.class === r.target)?.label ?? r.target}.` : '';
  const empty = values.every((v) => v <= 0)
    ? ' This map is empty: nothing here counts as positive evidence.'
    : '';
  $('method-caption').textContent = `${METHOD_CAPTIONS[r.method]}${target}${empty}`;

  const tokenTabs = $('token-tabs');
  tokenTabs.replaceChildren(
    ...(r.tokenNames.length > 1
      ? r.tokenNames.map((name, i) => {
          const b = el('button', { type: 'button' }, `${name} token`);
          b.setAttribute('aria-selected', String(i === token));
          b.addEventListener('click', () => {
            state.token = i;
            renderExplain();
          });
          return b;
        })
      : []),
  );
  renderHeads(l);
  renderDepths();
}

/** The chosen method's map at every depth, side by side; a click picks that depth. */
function renderDepths(): void {
  const r = state.explain;
  const picture = state.explainPicture;
  const strip = $('depth-strip');
  if (!r || !picture || r.layers.length < 2) {
    strip.replaceChildren();
    $('depth-title').hidden = true;
    return;
  }
  $('depth-title').hidden = false;
  $('depth-title').textContent = r.method === 'gradcam' ? 'By layer' : 'By depth';
  const [gh, gw] = r.gridSize;
  const token = Math.min(state.token, r.tokenNames.length - 1);
  const room = strip.clientWidth || 600;
  const width = Math.max(
    48,
    Math.min(120, Math.floor((room - 9 * (r.layers.length - 1)) / r.layers.length) - 4),
  );
  strip.replaceChildren(
    ...r.layers.map((l, i) => {
      const canvas = el('canvas');
      drawOverlay(
        canvas,
        picture,
        { values: r.maps[i][token], rows: gh, cols: gw },
        { width, alpha: state.alpha },
      );
      const button = el(
        'button',
        { type: 'button', class: 'depth-button', title: `show layer ${l}` },
        canvas,
        el('span', {}, `${l}`),
      );
      button.setAttribute('aria-pressed', String(i === state.layer));
      button.addEventListener('click', () => {
        state.layer = i;
        renderExplain();
      });
      return button;
    }),
  );
}

function renderHeads(layer: number): void {
  const r = state.explain;
  const picture = state.explainPicture;
  const grid = $('head-grid');
  if (!r?.heads || !picture) {
    grid.replaceChildren(el('p', { class: 'muted' }, 'No per-head maps for this model.'));
    return;
  }
  const heads = r.heads[layer - 1];
  $('heads-title').textContent = `Attention heads of layer ${layer}`;
  const [gh, gw] = r.gridSize;
  // Cells fill the row: large for a few heads, small for twelve.
  const room = grid.clientWidth || 600;
  const width = Math.max(64, Math.min(160, Math.floor((room - 9 * (heads.length - 1)) / heads.length)));
  grid.replaceChildren(
    ...heads.map((values, h) => {
      const canvas = el('canvas');
      drawOverlay(
        canvas,
        picture,
        { values, rows: gh, cols: gw },
        { width, alpha: Math.max(0.5, state.alpha) },
      );
      return el('figure', { class: 'head' }, canvas, el('figcaption', {}, `head ${h + 1}`));
    }),
  );
}

async function runExplain(generation: number): Promise<void> {
  const { image, model } = state;
  if (!image || !model) return;
  const card = $('explain-card');
  if (!model.attention) {
    card.classList.add('disabled');
    $('method-caption').textContent =
      `${model.title} has no attention to explain (a ${model.family}); pick a ViT, DeiT or Swin model.`;
    return;
  }
  card.classList.remove('disabled');
  card.classList.add('loading');
  try {
    const result = await api.explain(image.ref, model.id, state.method);
    const picture = await loadImage(result.picture);
    if (generation !== state.generation) return;
    const fresh = state.explain?.method !== result.method;
    state.explain = result;
    state.explainPicture = picture;
    if (fresh || state.layer >= result.layers.length) state.layer = result.layers.length - 1;
    state.timings.explain = result.ms;
    renderExplain();
    showTimings();
  } catch (e) {
    if (generation === state.generation) panelError($('head-grid'), e);
  } finally {
    if (generation === state.generation) card.classList.remove('loading');
  }
}

// ---------------------------------------------------------------------------------------------
// Mean attention distance

function renderDistance(result: DistanceResult): void {
  const dots = result.distances.flatMap((row, l) =>
    row.map((d, h): [number, number] => [l + 1 + (h / Math.max(1, row.length - 1) - 0.5) * 0.3, d]),
  );
  const mean = result.distances.map((row, l): [number, number] => [
    l + 1,
    row.reduce((a, b) => a + b, 0) / row.length,
  ]);
  const [gh, gw] = result.gridSize;
  const [ph, pw] = result.patchSize;
  const span = Math.hypot(gh * ph, gw * pw);
  $('distance-plot').replaceChildren(
    chart(
      [
        { name: 'each head', color: '#4f7cff', points: dots, line: false, dots: true, radius: 3.2 },
        { name: 'mean over heads', color: '#f0562e', points: mean, dots: true, radius: 2.5 },
      ],
      { xLabel: 'layer', yLabel: 'mean distance (px)', integerX: true, yMin: 0, yMax: Math.ceil(span / 2) },
    ),
  );
}

async function runDistance(generation: number): Promise<void> {
  const { image, model } = state;
  if (!image || !model) return;
  const plot = $('distance-plot');
  if (model.attention?.kind !== 'tokens') {
    plot.replaceChildren(
      el('p', { class: 'muted' }, 'Needs global attention over patch tokens (ViT, DeiT).'),
    );
    return;
  }
  try {
    const result = await api.distance(image.ref, model.id);
    if (generation !== state.generation) return;
    renderDistance(result);
  } catch (e) {
    if (generation === state.generation) panelError(plot, e);
  }
}

// ---------------------------------------------------------------------------------------------
// Saliency

function renderSaliency(): void {
  const r = state.saliency;
  const picture = state.saliencyPicture;
  if (!r || !picture) return;
  const view = state.saliencyView;
  const map = view === 'saliency' ? r.saliency : r.conspicuity[view];
  const canvas = $('saliency-canvas') as HTMLCanvasElement;
  const stage = $('saliency-stage');
  const width = Math.min(480, stage.parentElement ? stage.parentElement.clientWidth - 260 : 480);
  const [rows, cols] = r.mapSize;
  drawOverlay(
    canvas,
    picture,
    { values: map.values, rows, cols, scale: r.scale, range: 'zero' },
    { width: Math.max(260, width), alpha: state.alpha },
  );
  const svgRoot = $('scanpath') as unknown as SVGSVGElement;
  svgRoot.style.width = canvas.style.width;
  svgRoot.style.height = canvas.style.height;
  const tabs = $('saliency-tabs');
  tabs.replaceChildren(
    ...(['saliency', 'intensity', 'color', 'orientation'] as const).map((v) => {
      const b = el('button', { type: 'button' }, v);
      b.setAttribute('aria-selected', String(v === view));
      b.addEventListener('click', () => {
        state.saliencyView = v;
        renderSaliency();
      });
      return b;
    }),
  );
}

function renderFixations(r: SaliencyResult): void {
  drawScanpath($('scanpath') as unknown as SVGSVGElement, r);
  $('fixations').replaceChildren(
    ...r.fixations.map((f, k) =>
      el(
        'li',
        {},
        el('strong', {}, `${k + 1}`),
        ` (${Math.round(f.x)}, ${Math.round(f.y)}) at ${Math.round(f.t)} ms `,
        el('span', { class: `feature ${f.feature}` }, f.map),
      ),
    ),
  );
}

async function runSaliency(generation: number): Promise<void> {
  const { image } = state;
  if (!image) return;
  const card = $('saliency-card');
  card.classList.add('loading');
  try {
    const result = await api.saliency(image.ref);
    const picture = await loadImage(result.picture);
    if (generation !== state.generation) return;
    state.saliency = result;
    state.saliencyPicture = picture;
    $('saliency-canvas').dataset.image = image.title;
    state.timings.saliency = result.ms;
    renderSaliency();
    renderFixations(result);
    showTimings();
  } catch (e) {
    if (generation === state.generation) panelError($('fixations'), e);
  } finally {
    if (generation === state.generation) card.classList.remove('loading');
  }
}

// ---------------------------------------------------------------------------------------------
// Training curve

function renderTraining(epochs: EpochRecord[]): void {
  const plot = $('training-plot');
  const series = (key: keyof EpochRecord) =>
    epochs
      .filter((e) => typeof e[key] === 'number')
      .map((e): [number, number] => [e.epoch + 1, e[key] as number]);
  const acc = [
    { name: 'train accuracy', color: '#4f7cff', points: series('train_acc') },
    { name: 'test accuracy', color: '#f0562e', points: series('eval_acc') },
  ].filter((s) => s.points.length > 0);
  const loss = [
    { name: 'train loss', color: '#4f7cff', points: series('train_loss') },
    { name: 'test loss', color: '#f0562e', points: series('eval_loss') },
  ].filter((s) => s.points.length > 0);
  const pct = (v: number) => `${Math.round(v * 100)}%`;
  plot.replaceChildren(
    chart(acc, { xLabel: 'epoch', yLabel: 'accuracy', integerX: true, yFormat: pct, height: 200 }),
    chart(loss, { xLabel: 'epoch', yLabel: 'loss', integerX: true, height: 200 }),
  );
  const last = epochs[epochs.length - 1];
  $('training-caption').textContent =
    last.eval_acc !== undefined
      ? `After ${last.epoch + 1} epochs: ${(last.eval_acc * 100).toFixed(2)}% test accuracy (log of the glimpse train run that made these weights).`
      : `${last.epoch + 1} epochs (log of the glimpse train run that made these weights).`;
}

async function runTraining(): Promise<void> {
  const model = state.model;
  const plot = $('training-plot');
  if (!model) return;
  if (!model.hasLog) {
    plot.replaceChildren(el('p', { class: 'muted' }, `No training log for ${model.title}.`));
    $('training-caption').textContent = model.warning
      ? 'The trained checkpoint of the embedded model is not in this checkout; its curve appears here once it is.'
      : 'Curves appear for models trained with glimpse train (a log.jsonl next to the weights).';
    return;
  }
  try {
    const { epochs } = await api.log(model.id);
    if (epochs.length === 0)
      plot.replaceChildren(el('p', { class: 'muted' }, 'The training log has no epochs yet.'));
    else renderTraining(epochs);
  } catch (e) {
    panelError(plot, e);
  }
}

// ---------------------------------------------------------------------------------------------
// Images and models

async function runClassify(generation: number): Promise<boolean> {
  const { image, model } = state;
  if (!image || !model) return false;
  const result = await api.classify(image.ref, model.id);
  if (generation !== state.generation) return false;
  state.timings.classify = result.ms;
  renderPredictions(result);
  return true;
}

/** Shows everything for an image. An upload the server refuses leaves the current image in place. */
async function selectImage(image: CurrentImage, upload = false): Promise<void> {
  const previous = state.image;
  const generation = ++state.generation;
  state.image = image;
  state.timings = {};
  $('upload-error').hidden = true;
  setStatus('running...', true);
  try {
    await runClassify(generation);
  } catch (e) {
    if (generation !== state.generation) return;
    state.image = previous;
    if (upload && e instanceof ApiError && e.status === 400) {
      const error = $('upload-error');
      error.textContent = `Could not use ${image.title}: ${e.message}`;
      error.hidden = false;
      setStatus('');
      return;
    }
    panelError($('predictions'), e);
    setStatus('');
    return;
  }
  $('image-title').textContent = image.title;
  document.querySelectorAll('.thumbs button').forEach((b) => {
    b.setAttribute(
      'aria-pressed',
      String(typeof image.ref === 'object' && (b as HTMLElement).dataset.sample === image.ref.sample),
    );
  });
  showTimings();
  await Promise.all([runExplain(generation), runDistance(generation), runSaliency(generation)]);
}

function selectSample(sample: SampleEntry): void {
  selectImage({ ref: { sample: sample.id }, title: sample.title, label: sample.label });
}

function readFile(file: File): void {
  const reader = new FileReader();
  reader.onload = () => selectImage({ ref: String(reader.result), title: file.name || 'upload' }, true);
  reader.onerror = () => {
    const error = $('upload-error');
    error.textContent = `Could not read ${file.name}.`;
    error.hidden = false;
  };
  reader.readAsDataURL(file);
}

function renderSamples(): void {
  const thumb = (s: SampleEntry) => {
    const img = el('img', { src: s.url, alt: s.title, loading: 'lazy' });
    const button = el(
      'button',
      { type: 'button', title: `${s.title} (${s.credit})`, 'data-sample': s.id },
      img,
    );
    button.addEventListener('click', () => selectSample(s));
    return button;
  };
  $('photo-samples').replaceChildren(...state.samples.filter((s) => s.kind === 'photo').map(thumb));
  $('fashion-samples').replaceChildren(...state.samples.filter((s) => s.kind === 'fashion').map(thumb));
  const credits = [...new Set(state.samples.map((s) => s.credit))];
  $('credits').textContent = `Images: ${credits.join('; ')}.`;
}

function selectModel(model: ModelDescription): void {
  state.model = model;
  state.explain = null;
  if (!model.methods.includes(state.method)) state.method = model.methods[0] ?? 'rollout';
  const warning = $('model-warning');
  warning.hidden = !model.warning;
  warning.textContent = model.warning ? `${model.title}: ${model.warning}.` : '';
  renderMethodTabs();
  runTraining();
}

function wireControls(): void {
  const select = $('model-select') as HTMLSelectElement;
  select.addEventListener('change', () => {
    const model = state.models.find((m) => m.id === select.value);
    if (!model) return;
    selectModel(model);
    if (state.image) selectImage(state.image);
  });
  ($('layer-slider') as HTMLInputElement).addEventListener('input', (e) => {
    state.layer = Number((e.target as HTMLInputElement).value);
    renderExplain();
  });
  ($('alpha-slider') as HTMLInputElement).addEventListener('input', (e) => {
    state.alpha = Number((e.target as HTMLInputElement).value) / 100;
    renderExplain();
    renderSaliency();
  });
  $('replay').addEventListener('click', () => {
    if (state.saliency) drawScanpath($('scanpath') as unknown as SVGSVGElement, state.saliency);
  });
  const input = $('file-input') as HTMLInputElement;
  input.addEventListener('change', () => {
    const file = input.files?.[0];
    if (file) readFile(file);
    input.value = '';
  });
  const zone = $('dropzone');
  for (const type of ['dragenter', 'dragover']) {
    zone.addEventListener(type, (e) => {
      e.preventDefault();
      zone.classList.add('over');
    });
  }
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    const file = (e as DragEvent).dataTransfer?.files[0];
    if (file) readFile(file);
  });
  let resize = 0;
  window.addEventListener('resize', () => {
    clearTimeout(resize);
    resize = window.setTimeout(renderSaliency, 150);
  });
}

async function start(): Promise<void> {
  wireControls();
  setStatus('loading...', true);
  try {
    const [models, samples, colormaps] = await Promise.all([api.models(), api.samples(), api.colormaps()]);
    setColormaps(colormaps);
    state.models = models.models;
    state.samples = samples.samples;
    const select = $('model-select') as HTMLSelectElement;
    select.replaceChildren(...models.models.map((m) => el('option', { value: m.id }, m.title)));
    select.value = models.default;
    selectModel(models.models.find((m) => m.id === models.default) ?? models.models[0]);
    renderSamples();
    // A 28 px gray model starts on a Fashion-MNIST image, others on a photograph.
    const fashion = state.model?.inputSize[1] === 28;
    const first = state.samples.find(
      (s) => s.kind === (fashion ? 'fashion' : 'photo') && (!fashion || s.label === 9),
    );
    setStatus('');
    document.body.dataset.ready = 'true';
    if (first) selectSample(first);
  } catch (e) {
    setStatus(`The server did not answer: ${e instanceof Error ? e.message : String(e)}`);
  }
}

start();
