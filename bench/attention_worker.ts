/**
 * One attention configuration for bench/attention.ts, in its own process so that its peak RSS is
 * its own: `--n N --mode fused|unfused [--heads 12 --d 64]`. Prints {ms, peakMB} as JSON: the best
 * time of one forward (no autograd) and the memory one call adds over the inputs.
 */
import { parseArgs } from 'node:util';
import { F, manualSeed, noGrad, randn } from '../src/index.js';
import { bestMs } from './common.js';

const { values } = parseArgs({
  options: {
    n: { type: 'string' },
    mode: { type: 'string' },
    heads: { type: 'string', default: '12' },
    d: { type: 'string', default: '64' },
  },
});
const n = Number(values.n);
const heads = Number(values.heads);
const d = Number(values.d);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('attention_worker: run with --expose-gc');

manualSeed(0);
const q = randn([1, heads, n, d]);
const k = randn([1, heads, n, d]);
const v = randn([1, heads, n, d]);
const scale = 1 / Math.sqrt(d);
const run =
  values.mode === 'fused'
    ? () => F.scaledDotProductAttention(q, k, v)
    : () => F.matmul(F.softmax(F.mul(F.matmul(q, F.transpose(k, -2, -1)), scale), -1), v);

const result = noGrad(() => {
  // Start the thread pool and compile the code paths on a small input first, so that the memory
  // measured below is the call's own.
  const tiny = randn([1, heads, 128, d]);
  if (values.mode === 'fused') F.scaledDotProductAttention(tiny, tiny, tiny);
  else F.matmul(F.softmax(F.mul(F.matmul(tiny, F.transpose(tiny, -2, -1)), scale), -1), tiny);
  gc();
  const before = process.memoryUsage.rss();
  run();
  const peakMB = (process.resourceUsage().maxRSS * 1024 - before) / 2 ** 20;
  const ms = bestMs(
    () => {
      run();
    },
    3,
    1500,
  );
  return { ms, peakMB };
});
console.log(JSON.stringify(result));
