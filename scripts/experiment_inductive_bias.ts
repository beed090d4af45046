/**
 * The lecture's "Discussion" experiment: do transformers need more data than networks with the
 * inductive biases of convolutions? A ViT, an MLP-Mixer, a ConvMixer and a ResNet of similar size
 * (0.7-0.85M parameters) are trained from scratch on 1k, 10k and 60k Fashion-MNIST training images
 * (class-balanced subsets, same seed) and tested on the 10k test images. DeiT's answer rides along:
 * the same ViT with a distillation token, taught by the ResNet of the same data size.
 *
 *   npm run experiment:inductive-bias -- [--sizes 1000,10000,60000] [--models vit,mixer,convmixer,resnet]
 *     [--epochs 1000:40,10000:8,60000:2] [--runs runs/inductive_bias] [--out docs] [--seed 0]
 *
 * Every model gets the same epochs at a given size (smaller sets get more epochs, so each model sees
 * a comparable number of updates) and its preset's other settings. Each run lives in
 * <runs>/<model>_<size>/ and resumes when the command is repeated; finished runs are reused. Writes
 * <out>/inductive_bias.md (table and command), .json (raw) and .svg (test accuracy against
 * training-set size, log scale).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { getBackend } from '../src/index.js';
import { writeFileAtomic } from '../src/io/safetensors.js';
import { lineChartSvg } from '../src/train/plot.js';
import { getPreset, type TrainRecipe } from '../src/train/presets.js';
import { runOrResume } from '../src/train/recipe.js';

/** The contestants, sized to 0.7-0.85M parameters; everything not listed comes from the preset. */
const MODELS: Record<string, { label: string; recipe: (size: number) => TrainRecipe }> = {
  vit: { label: 'ViT (attention)', recipe: () => getPreset('vit_fashion') },
  mixer: { label: 'MLP-Mixer (MLPs only)', recipe: () => getPreset('mixer_fashion') },
  convmixer: {
    label: 'ConvMixer (convolutions)',
    recipe: () => ({
      ...getPreset('convmixer_fashion'),
      // 4x4 patches (a 7x7 map, like the ViT's 49 tokens): 2x2 patches would cost ~4x the ViT's step.
      modelArgs: { dim: 256, depth: 10, kernel_size: 5, patch_size: 4, act_layer: 'gelu' },
    }),
  },
  resnet: {
    label: 'ResNet-18 layout (convolutions)',
    recipe: () => ({
      ...getPreset('resnet_fashion'),
      modelArgs: { channels: [16, 32, 64, 128], stem_width: 16 },
    }),
  },
  // DeiT's claim at every data size: the ViT above, plus a distillation token taught (hard labels) by
  // the ResNet trained on the same images, same epochs. Needs the resnet cell of that size first.
  deit: {
    label: 'DeiT (the ViT, distilled from the ResNet)',
    recipe: (size) => ({
      ...getPreset('deit_fashion_distilled'),
      teacher: join(values.runs!, `resnet_${size}${suffix}`, 'model.safetensors'),
    }),
  },
  // The same with soft distillation (the teacher's distribution at temperature 3): not in the default list.
  deit_soft: {
    label: 'DeiT, soft distillation',
    recipe: (size) => ({
      ...getPreset('deit_fashion_distilled'),
      teacher: join(values.runs!, `resnet_${size}${suffix}`, 'model.safetensors'),
      distillation: 'soft',
      distillationTau: 3,
    }),
  },
};

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000,10000,60000' },
    models: { type: 'string', default: 'vit,mixer,convmixer,resnet,deit' },
    // The default fits the 2-core machine's budget (~240k training images per model, ~55 CPU minutes
    // for all twelve runs); larger budgets show the same order more sharply.
    epochs: { type: 'string', default: '1000:40,10000:8,60000:2' },
    runs: { type: 'string', default: 'runs/inductive_bias' },
    // A replicate with another seed (subset, initialization, data order): its runs and docs get a
    // _seed<N> suffix, so seed 0's stay as they are.
    seed: { type: 'string', default: '0' },
    out: { type: 'string', default: 'docs' },
  },
});
const seed = Number(values.seed);
if (!(Number.isInteger(seed) && seed >= 0))
  throw new Error(`--seed: expected a non-negative integer, got ${values.seed}`);
const suffix = seed === 0 ? '' : `_seed${seed}`;
const sizes = values.sizes!.split(',').map(Number);
const models = values.models!.split(',');
for (const m of models)
  if (!MODELS[m]) throw new Error(`unknown model '${m}'; choose from ${Object.keys(MODELS).join(', ')}`);
const epochsBySize = new Map(
  values.epochs!.split(',').map((kv) => kv.split(':').map(Number) as [number, number]),
);
for (const n of sizes) {
  if (!(Number.isInteger(n) && n > 0 && n <= 60000))
    throw new Error(`--sizes: ${n} is not a training-set size in 1..60000`);
  if (!epochsBySize.has(n))
    throw new Error(`--epochs gives no epoch count for size ${n} (format 1000:100,10000:40)`);
}

interface Cell {
  model: string;
  size: number;
  epochs: number;
  params: number;
  testAcc: number;
  bestTestAcc: number;
  minutes: number;
}
const cells: Cell[] = [];
const command = `npm run experiment:inductive-bias -- --sizes ${values.sizes} --models ${values.models} --epochs ${values.epochs}${seed ? ` --seed ${seed}` : ''}`;

/** DeiT against the same ViT without a teacher, and the teacher itself, at each size both ran. */
function distillationLines(): string[] {
  const at = (m: string, n: number) => cells.find((c) => c.model === m && c.size === n)?.testAcc;
  const rows = sizes.flatMap((n) => {
    const [vit, teacher] = [at('vit', n), at('resnet', n)];
    if (vit === undefined || teacher === undefined) return [];
    return ['deit', 'deit_soft'].flatMap((m) => {
      const student = at(m, n);
      if (student === undefined) return [];
      const gain = 100 * (student - vit);
      return [
        `| ${n} | ${m === 'deit' ? 'hard' : 'soft'} | ${(100 * vit).toFixed(2)}% | ${(100 * student).toFixed(2)}% | ${gain >= 0 ? '+' : ''}${gain.toFixed(2)} | ${(100 * teacher).toFixed(2)}% |`,
      ];
    });
  });
  if (rows.length === 0) return [];
  return [
    '',
    'Distillation (DeiT): the same ViT and epochs with and without the ResNet of the same size as teacher.',
    '',
    '| training images | distillation | ViT | DeiT | gain (points) | teacher (ResNet) |',
    '| ---: | --- | ---: | ---: | ---: | ---: |',
    ...rows,
  ];
}

function write(): void {
  mkdirSync(values.out!, { recursive: true });
  const base = join(values.out!, `inductive_bias${suffix}`);
  const meta = {
    command,
    backend: getBackend(),
    threads: process.env.GLIMPSE_THREADS ?? `${cpus().length} (default)`,
  };
  writeFileAtomic(`${base}.json`, `${JSON.stringify({ ...meta, cells }, null, 2)}\n`);
  const cell = (m: string, n: number) => cells.find((c) => c.model === m && c.size === n);
  const pct = (v: number | undefined) => (v === undefined ? '-' : `${(100 * v).toFixed(2)}%`);
  const header = `| model | params | ${sizes.map((n) => `${n} images`).join(' | ')} |`;
  const lines = [
    '# Inductive bias: test accuracy against training-set size (Fashion-MNIST)',
    '',
    `Command: \`${command}\` (backend ${meta.backend}, threads ${meta.threads}). Class-balanced training subsets,`,
    `epochs per size ${sizes.map((n) => `${n}: ${epochsBySize.get(n)}`).join(', ')}; top-1 on the 10,000 test images after the last epoch.`,
    '',
    header,
    `| --- | ---: | ${sizes.map(() => '---:').join(' | ')} |`,
    ...models.map((m) => {
      const params = cells.find((c) => c.model === m)?.params;
      return `| ${MODELS[m].label} | ${params ? `${(params / 1e6).toFixed(2)}M` : '-'} | ${sizes.map((n) => pct(cell(m, n)?.testAcc)).join(' | ')} |`;
    }),
    ...distillationLines(),
    '',
    `![test accuracy against training-set size](inductive_bias${suffix}.svg)`,
    '',
  ];
  writeFileAtomic(`${base}.md`, lines.join('\n'));
  const series = models.map((m) => ({
    label: MODELS[m].label,
    points: sizes.flatMap((n) => {
      const c = cell(m, n);
      return c ? [[n, c.testAcc] as [number, number]] : [];
    }),
  }));
  writeFileAtomic(
    `${base}.svg`,
    lineChartSvg(series, { title: 'Fashion-MNIST test accuracy', xLabel: 'training images', logX: true }),
  );
}

for (const n of sizes) {
  for (const m of models) {
    const base = MODELS[m].recipe(n);
    if (base.teacher && !existsSync(base.teacher))
      throw new Error(
        `${m} at ${n} images needs its teacher ${base.teacher}: list resnet before ${m} in --models`,
      );
    const recipe = {
      ...base,
      epochs: epochsBySize.get(n)!,
      trainSubset: n < 60000 ? n : undefined,
    };
    // Tiny subsets with the preset batch size would leave too few steps per epoch to warm up sensibly.
    recipe.batchSize = Math.min(recipe.batchSize, Math.max(16, Math.floor(n / 8)));
    recipe.warmupEpochs = Math.min(recipe.warmupEpochs ?? 0, recipe.epochs / 10);
    recipe.seed = seed;
    const outDir = join(values.runs!, `${m}_${n}${suffix}`);
    process.stdout.write(
      `\n== ${MODELS[m].label}, ${n} training images, ${recipe.epochs} epochs -> ${outDir}\n`,
    );
    const result = await runOrResume(recipe, outDir, {
      // Two evaluations on the 10k test images per run (half-way and at the end): with 40 epochs of
      // 1k images, evaluating after each one would cost more than the training.
      evalEvery: Math.max(1, Math.round(recipe.epochs / 2)),
      progress: process.stderr.isTTY === true,
      print: (line) => process.stdout.write(`${line}\n`),
      log: (msg) => process.stderr.write(`${msg}\n`),
    });
    const last = result.history.at(-1);
    if (!last?.eval_acc) throw new Error(`${outDir}: the run recorded no evaluation`);
    cells.push({
      model: m,
      size: n,
      epochs: recipe.epochs,
      params: result.model.numParameters(),
      testAcc: last.eval_acc,
      bestTestAcc: Math.max(...result.history.map((h) => h.eval_acc ?? 0)),
      minutes: result.history.reduce((s, h) => s + h.time_s, 0) / 60,
    });
    write();
  }
}
process.stdout.write(`\nwrote ${join(values.out!, `inductive_bias${suffix}.md`)}, .json and .svg\n`);
