/**
 * Parity against a peer fixture (fixtures.json + NAME.safetensors + NAME.io.safetensors): build the
 * model from the recorded constructor and kwargs, load the peer's own checkpoint, run the recorded
 * input and compare the output and every attention map, or, for a training fixture, the loss, every
 * gradient and every parameter after one AdamW step. The rule is the fixtures' |a-b| <= tol + tol*|b|.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors } from '../io/safetensors.js';
import { crossEntropy } from '../ops/loss.js';
import { AdamW } from '../optim/adam.js';
import { noGrad } from '../tensor/autograd.js';
import { fmt, shapesEqual } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { type CheckpointReport, loadCheckpointSync } from './checkpoint.js';
import type { ImageClassifier } from './classifier.js';
import { createModelFromConstructor } from './registry.js';

export interface FixtureEntry {
  constructor: string;
  kwargs: Record<string, unknown>;
  rtol_atol?: number;
  optimizer?: string;
  attention_maps?: number;
}

export interface Comparison {
  what: string;
  shape: readonly number[];
  maxAbs: number;
  /** Largest |a-b| / |b| over elements with |b| > tol (relative error where it means something). */
  maxRel: number;
  /** Largest |a-b| / (tol + tol*|b|): within tolerance when <= 1. */
  worst: number;
  ok: boolean;
}

export interface VerifyResult {
  name: string;
  constructor: string;
  tolerance: number;
  load: CheckpointReport;
  comparisons: Comparison[];
  ok: boolean;
}

/**
 * `slack` adds a per-element allowance on top of tol + tol*|b| (used where the reference itself is
 * rounding noise).
 */
export function compareTensors(
  what: string,
  actual: Tensor,
  expected: Tensor,
  tol: number,
  slack?: (i: number) => number,
): Comparison {
  if (!shapesEqual(actual.shape, expected.shape)) {
    return {
      what: `${what} (shape ${fmt(actual.shape)} vs ${fmt(expected.shape)})`,
      shape: expected.shape,
      maxAbs: Infinity,
      maxRel: Infinity,
      worst: Infinity,
      ok: false,
    };
  }
  let maxAbs = 0;
  let maxRel = 0;
  let worst = 0;
  for (let i = 0; i < expected.size; i++) {
    const a = Number(actual.data[i]);
    const b = Number(expected.data[i]);
    const err = Number.isNaN(a) !== Number.isNaN(b) ? Infinity : Number.isNaN(b) ? 0 : Math.abs(a - b);
    maxAbs = Math.max(maxAbs, err);
    if (Math.abs(b) > tol) maxRel = Math.max(maxRel, err / Math.abs(b));
    worst = Math.max(worst, err / (tol + tol * Math.abs(b) + (slack ? slack(i) : 0)));
  }
  return { what, shape: expected.shape, maxAbs, maxRel, worst, ok: worst <= 1 };
}

function readFixtureIndex(dir: string): Record<string, FixtureEntry> {
  const path = join(dir, 'fixtures.json');
  if (!existsSync(path))
    throw new Error(`verify: ${path} does not exist; pass a fixture directory that has a fixtures.json`);
  const index = JSON.parse(readFileSync(path, 'utf8')) as { fixtures?: Record<string, FixtureEntry> };
  return index.fixtures ?? (index as unknown as Record<string, FixtureEntry>);
}

/** AdamW hyperparameters from the fixture's description, e.g. "AdamW(lr=1e-3, betas=(0.9,0.999), eps=1e-8, weight_decay=0.05)". */
function adamwOptions(description: string) {
  const num = (re: RegExp, fallback: number) => {
    const m = re.exec(description);
    return m ? Number(m[1]) : fallback;
  };
  const betas = /betas=\(([^,]+),([^)]+)\)/.exec(description);
  return {
    lr: num(/lr=([\d.e+-]+)/, 1e-3),
    betas: (betas ? [Number(betas[1]), Number(betas[2])] : [0.9, 0.999]) as [number, number],
    eps: num(/eps=([\d.e+-]+)/, 1e-8),
    weightDecay: num(/weight_decay=([\d.e+-]+)/, 1e-2),
  };
}

/** A float32 gradient this small next to O(1) activations is rounding noise around an exact zero. */
const NOISE_GRAD = 1e-6;

function trainStep(
  model: ImageClassifier,
  io: Map<string, Tensor>,
  entry: FixtureEntry,
  tol: number,
): Comparison[] {
  if (!/^AdamW/.test(entry.optimizer ?? '')) {
    throw new Error(`verify: optimizer '${entry.optimizer}' is not supported; training fixtures use AdamW`);
  }
  const get = (k: string) => {
    const t = io.get(k);
    if (!t) throw new Error(`verify: the fixture has no tensor '${k}'`);
    return t;
  };
  model.train();
  const params = model.namedParameters();
  const loss = crossEntropy(model.forward(get('input')), get('target'));
  loss.backward();
  const out = [compareTensors('loss', loss.reshape([1]), get('loss'), tol)];
  for (const [name, p] of params) {
    const expected = io.get(`grad.${name}`);
    if (!expected) continue;
    if (!p.grad) {
      out.push({
        what: `grad.${name} (no gradient)`,
        shape: p.shape,
        maxAbs: Infinity,
        maxRel: Infinity,
        worst: Infinity,
        ok: false,
      });
    } else out.push(compareTensors(`grad.${name}`, p.grad.reshape(p.shape), expected, tol));
  }
  const opt = new AdamW(
    params.map(([, p]) => p),
    adamwOptions(entry.optimizer ?? ''),
  );
  const hyper = adamwOptions(entry.optimizer ?? '');
  opt.step();
  for (const [name, p] of params) {
    const expected = io.get(`after.${name}`);
    if (!expected) continue;
    // Where the true gradient is zero (a key bias cannot change the softmax) both sides hold rounding
    // noise, and Adam's first step turns any noise into a step of up to lr either way: allow 2 lr there.
    const grad = io.get(`grad.${name}`);
    const noise = (i: number) => (grad && Math.abs(Number(grad.data[i])) < NOISE_GRAD ? 2 * hyper.lr : 0);
    const noisy = grad ? Array.from(grad.data).filter((g) => Math.abs(Number(g)) < NOISE_GRAD).length : 0;
    const what = noisy ? `after.${name} (${noisy} zero-gradient elements within 2 lr)` : `after.${name}`;
    out.push(compareTensors(what, p, expected, tol, noise));
  }
  return out;
}

/** Builds, loads and runs fixture NAME of directory `dir`; compares everything the fixture recorded. */
export function verifyFixture(dir: string, name: string): VerifyResult {
  const index = readFixtureIndex(dir);
  const entry = index[name];
  if (!entry) {
    throw new Error(
      `verify: no fixture '${name}' in ${join(dir, 'fixtures.json')}; fixtures: ${Object.keys(index).join(', ')}`,
    );
  }
  const configPath = join(dir, `${name}.config.json`);
  const hfConfig = existsSync(configPath)
    ? (JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>)
    : undefined;
  const model = createModelFromConstructor(entry.constructor, entry.kwargs, { hfConfig, weightInit: 'skip' });
  const load = loadCheckpointSync(model, join(dir, `${name}.safetensors`), { config: hfConfig });
  const ioPath = join(dir, `${name}.io.safetensors`);
  if (!existsSync(ioPath))
    throw new Error(`verify: ${ioPath} does not exist; the fixture needs its inputs and outputs`);
  const io = readSafetensors(ioPath).tensors;
  const tol = entry.rtol_atol ?? 1e-4;
  let comparisons: Comparison[];
  if (entry.optimizer) comparisons = trainStep(model, io, entry, tol);
  else {
    const input = io.get('input');
    const expected = io.get('output');
    if (!input || !expected) throw new Error(`verify: ${ioPath} needs 'input' and 'output' tensors`);
    model.eval();
    const { logits, attentions } = noGrad(() => model.forward(input, { captureAttention: true }));
    comparisons = [compareTensors('output', logits, expected, tol)];
    const maps = [...io.keys()].filter((k) => /^attn\.\d+$/.test(k));
    if (maps.length !== 0 && maps.length !== attentions.length) {
      comparisons.push({
        what: `attention maps (model has ${attentions.length}, fixture ${maps.length})`,
        shape: [],
        maxAbs: Infinity,
        maxRel: Infinity,
        worst: Infinity,
        ok: false,
      });
    }
    for (let i = 0; i < Math.min(maps.length, attentions.length); i++) {
      comparisons.push(compareTensors(`attn.${i}`, attentions[i], io.get(`attn.${i}`) as Tensor, tol));
    }
  }
  return {
    name,
    constructor: entry.constructor,
    tolerance: tol,
    load,
    comparisons,
    ok: comparisons.every((c) => c.ok),
  };
}
