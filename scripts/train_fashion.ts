/**
 * Trains the Fashion-MNIST presets and records what they reach (issue 5's figures):
 *
 *   node --import tsx scripts/train_fashion.ts [PRESET...] [--runs runs] [--epochs N] [--subset N]
 *     [--doc docs/training.md]
 *
 * Default: resnet_fashion (also the teacher), vit_fashion and deit_fashion_distilled, whose teacher
 * is the ResNet just trained (convmixer_fashion runs when named): the distilled ViT and the plain
 * ViT share the architecture, epochs and schedule, so their test accuracies compare the effect of the
 * teacher alone. Each run lives in <runs>/<preset>/ and resumes there when the command is repeated
 * after an interruption; a finished run is not trained again. After every run the table in --doc
 * (and its JSON twin) is rewritten with the test accuracy, the wall time, the backend and threads.
 * --epochs/--subset shorten runs for a smoke test and skip the doc unless --doc is given.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { nativeStatus } from '../src/backend/native.js';
import { getBackend } from '../src/index.js';
import { writeFileAtomic } from '../src/io/safetensors.js';
import { getPreset, TRAIN_PRESETS } from '../src/train/presets.js';
import { runOrResume } from '../src/train/recipe.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    runs: { type: 'string', default: 'runs' },
    epochs: { type: 'string' },
    subset: { type: 'string' },
    doc: { type: 'string' },
  },
});
const presets = positionals.length
  ? positionals
  : ['resnet_fashion', 'vit_fashion', 'deit_fashion_distilled'];
for (const p of presets) getPreset(p);
const shortened = values.epochs !== undefined || values.subset !== undefined;
const doc = values.doc ?? (shortened ? null : 'docs/training.md');

interface ResultRow {
  preset: string;
  model: string;
  params: number;
  epochs: number;
  trainImages: number;
  testAcc: number;
  bestTestAcc: number;
  bestEpoch: number;
  emaAcc: number | null;
  wallMinutes: number;
  /** Wall time of the training steps alone (the epochs' images over their measured images/s, no evaluation). */
  trainMinutes?: number;
  /** Process CPU minutes (all threads): the work, whatever else ran on the machine. */
  cpuMinutes: number | null;
  /** Mean 1-minute load average over the epochs. */
  meanLoad: number | null;
  backend: string;
  threads: string;
  teacher: string | null;
  command: string;
  date: string;
}

const jsonPath = doc ? doc.replace(/\.md$/, '.json') : null;
const rows: Record<string, ResultRow> =
  jsonPath && existsSync(jsonPath) ? JSON.parse(readFileSync(jsonPath, 'utf8')) : {};
/** Presets this process trained (its rows win over the file's). */
const finished: Record<string, true> = {};

function writeDoc(): void {
  if (!doc || !jsonPath) return;
  mkdirSync(dirname(doc), { recursive: true });
  // Another process may have finished a preset since we started: keep its row.
  if (existsSync(jsonPath)) {
    const onDisk = JSON.parse(readFileSync(jsonPath, 'utf8')) as Record<string, ResultRow>;
    for (const [k, v] of Object.entries(onDisk)) if (!(k in finished)) rows[k] = v;
  }
  writeFileAtomic(jsonPath, `${JSON.stringify(rows, null, 2)}\n`);
  const pct = (v: number | null) => (v === null ? '-' : `${(100 * v).toFixed(2)}%`);
  const lines = [
    '# Fashion-MNIST training results',
    '',
    'Written by `scripts/train_fashion.ts`; each row names the command that produced it. Test accuracy is',
    'top-1 on the 10,000 test images after the last epoch (best epoch in parentheses); wall and CPU time',
    'cover training and the per-epoch evaluation. CPU time is the process total over all its threads; on',
    'a shared machine (the load column is the mean 1-minute load average) it is the steadier measure of',
    'the work, and CPU time / threads is the wall time the run would take with its cores to itself.',
    '',
    'What the runs show against the targets, and the checks behind the recipes: [training/findings.md](training/findings.md).',
    'What a training step costs and where its time goes: [training/speed.md](training/speed.md).',
    '',
    `Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}, native backend ${nativeStatus().loaded ? `loaded (${nativeStatus().isa})` : 'not loaded'}.`,
    '',
    '| preset | model | params | epochs | test acc (best) | EMA acc | wall time | of it training | CPU time | load | backend, threads | command |',
    '| --- | --- | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | --- | --- |',
    ...Object.values(rows).map(
      (r) =>
        `| ${r.preset} | ${r.model} | ${(r.params / 1e6).toFixed(2)}M | ${r.epochs} | ${pct(r.testAcc)} (${pct(r.bestTestAcc)} @${r.bestEpoch}) | ${pct(r.emaAcc)} | ${r.wallMinutes.toFixed(1)} min | ${r.trainMinutes === undefined ? '-' : `${r.trainMinutes.toFixed(1)} min`} | ${r.cpuMinutes === null || r.cpuMinutes === undefined ? '-' : `${r.cpuMinutes.toFixed(1)} min`} | ${r.meanLoad === null || r.meanLoad === undefined ? '-' : r.meanLoad.toFixed(1)} | ${r.backend}, ${r.threads} | \`${r.command}\` |`,
    ),
    '',
    ...Object.values(rows)
      .filter((r) => existsSync(join(dirname(doc), 'training', `${r.preset}.svg`)))
      .map((r) => `![${r.preset} learning curves](training/${r.preset}.svg)`),
    '',
  ];
  for (const [plain, distilled] of [
    ['vit_fashion', 'deit_fashion_distilled'],
    ['vit_fashion_convstem_aug', 'deit_fashion_convstem_distilled'],
  ]) {
    const vit = rows[plain];
    const deit = rows[distilled];
    if (!vit || !deit || vit.epochs !== deit.epochs) continue;
    const delta = 100 * (deit.testAcc - vit.testAcc);
    lines.push(
      `Distillation (${distilled} vs ${plain}): with a ${deit.teacher ? basename(dirname(deit.teacher)) : 'CNN'} teacher the ViT reaches ${pct(deit.testAcc)} against ${pct(vit.testAcc)} without one (same architecture and ${vit.epochs} epochs): ${delta >= 0 ? '+' : ''}${delta.toFixed(2)} points.`,
      '',
    );
  }
  writeFileAtomic(doc, lines.join('\n'));
}

for (const name of presets) {
  const recipe = getPreset(name);
  if (values.epochs !== undefined) recipe.epochs = Number(values.epochs);
  if (values.subset !== undefined) recipe.trainSubset = Number(values.subset);
  if (recipe.warmupEpochs !== undefined && recipe.warmupEpochs >= recipe.epochs)
    recipe.warmupEpochs = recipe.epochs / 4;
  // The preset names its teacher's run (runs/<teacher preset>/model.safetensors): look for it under --runs.
  const teacherPreset = recipe.teacher ? basename(dirname(recipe.teacher)) : null;
  if (teacherPreset) recipe.teacher = join(values.runs!, teacherPreset, 'model.safetensors');
  if (recipe.teacher && !existsSync(recipe.teacher)) {
    throw new Error(
      `${name} needs its teacher ${recipe.teacher}; train ${teacherPreset} first (it runs first by default)`,
    );
  }
  const outDir = join(values.runs!, name);
  process.stdout.write(`\n== ${name}: ${TRAIN_PRESETS[name].description ?? recipe.model} -> ${outDir}\n`);
  const result = await runOrResume(recipe, outDir, {
    progress: process.stderr.isTTY === true,
    print: (line) => process.stdout.write(`${line}\n`),
    log: (m) => process.stderr.write(`${m}\n`),
  });
  const history = result.history;
  const last = history.at(-1);
  if (!last || last.eval_acc === undefined) throw new Error(`${name}: the run recorded no evaluation`);
  const best = history.reduce((a, b) => ((b.eval_acc ?? 0) > (a.eval_acc ?? 0) ? b : a));
  const flags = [
    values.epochs ? `--epochs ${values.epochs}` : '',
    values.subset ? `--subset ${values.subset}` : '',
  ]
    .filter(Boolean)
    .join(' ');
  rows[name] = {
    preset: name,
    model: recipe.model,
    params: result.model.numParameters(),
    epochs: recipe.epochs,
    trainImages: recipe.trainSubset ?? 60000,
    testAcc: last.eval_acc,
    bestTestAcc: best.eval_acc!,
    bestEpoch: best.epoch + 1,
    emaAcc: last.eval_ema_acc ?? null,
    wallMinutes: history.reduce((s, h) => s + h.time_s, 0) / 60,
    trainMinutes:
      history.reduce(
        (s, h, i) => s + ((h.step - (i ? history[i - 1].step : 0)) * recipe.batchSize) / h.images_per_s,
        0,
      ) / 60,
    cpuMinutes: history.every((h) => h.cpu_s !== undefined)
      ? history.reduce((s, h) => s + h.cpu_s!, 0) / 60
      : null,
    meanLoad: history.every((h) => h.load_avg !== undefined)
      ? history.reduce((s, h) => s + h.load_avg!, 0) / history.length
      : null,
    backend: getBackend(),
    threads: process.env.GLIMPSE_THREADS ?? `${cpus().length} (default)`,
    teacher: recipe.teacher ?? null,
    command: `node --import tsx scripts/train_fashion.ts ${name}${flags ? ` ${flags}` : ''}`,
    date: new Date().toISOString().slice(0, 10),
  };
  finished[name] = true;
  if (doc) {
    // The learning curves beside the table.
    mkdirSync(join(dirname(doc), 'training'), { recursive: true });
    copyFileSync(join(outDir, 'curves.svg'), join(dirname(doc), 'training', `${name}.svg`));
  }
  process.stdout.write(
    `${name}: test accuracy ${(100 * last.eval_acc).toFixed(2)}% after ${history.length} epochs\n`,
  );
  writeDoc();
}
