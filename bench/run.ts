/**
 * `npm run bench [-- gemm attention vit train]`: glimpse against its peers, measured side by side in the
 * same run (all parts by default). Prints a table of ratios per part and writes everything, with
 * the machine it ran on, to bench/results/<timestamp>.json. See bench/README.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { nativeStatus } from '../src/backend/native.js';
import { ATTENTION_COLUMNS, attentionBench } from './attention.js';
import { BENCH_DIR, machine, type PartResult, printTable } from './common.js';
import { GEMM_COLUMNS, gemmBench } from './gemm.js';
import { TRAIN_STEP_COLUMNS, trainStepBench } from './train_step.js';
import { VIT_COLUMNS, vitBench } from './vit.js';

const PARTS = ['gemm', 'vit', 'attention', 'train'];
const wanted = process.argv.slice(2);
for (const w of wanted) {
  if (!PARTS.includes(w)) {
    console.error(`bench: unknown part '${w}'; parts: ${PARTS.join(', ')}`);
    process.exit(2);
  }
}
const run = (part: string) => wanted.length === 0 || wanted.includes(part);

const status = nativeStatus();
const threads = status.threads ?? 1;
const info = {
  ...machine(),
  host: hostname(),
  backend: status.loaded ? 'native' : 'js',
  isa: status.isa ?? null,
  threads,
};
console.log(
  `glimpse bench on ${info.cpu}, ${info.cores} cores, ${threads} thread(s), native ${status.loaded ? status.isa : `unavailable (${status.reason})`}`,
);

const results: PartResult[] = [];
function show(r: PartResult, columns: Array<[string, string]>, title: string): void {
  results.push(r);
  printTable(title, r.rows, columns);
  for (const n of r.notes) console.log(`  ${n}`);
}

if (run('gemm')) show(await gemmBench(), GEMM_COLUMNS, '1. SGEMM (GFLOP/s, C = A B, A (M, K), B (K, N))');
if (run('vit')) show(vitBench(threads), VIT_COLUMNS, '2. ViT-B/16 224x224 inference');
if (run('attention'))
  show(attentionBench(), ATTENTION_COLUMNS, '3. Attention, 12 heads, d = 64: fused vs unfused');
if (run('train'))
  show(trainStepBench(threads), TRAIN_STEP_COLUMNS, '4. Training step: small ViT (vit_fashion), batch 128');

mkdirSync(`${BENCH_DIR}results`, { recursive: true });
const file = `${BENCH_DIR}results/${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
writeFileSync(
  file,
  `${JSON.stringify({ date: new Date().toISOString(), machine: info, results }, null, 2)}\n`,
);
console.log(`\nwrote ${file}`);
