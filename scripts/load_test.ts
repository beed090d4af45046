/**
 * Load test of the explorer: N concurrent clients, each repeating classify + explain (rollout) on the
 * bundled Fashion-MNIST samples over loopback, for a fixed time after a warm-up. Prints requests/s and
 * latency percentiles per route and per classify+rollout pair, and writes them as JSON.
 *
 *   node --import tsx scripts/load_test.ts [--clients 8] [--seconds 30] [--warmup 5] [--workers N]
 *     [--url http://127.0.0.1:5173] [--out docs/explorer/load_test.json]
 *
 * Without --url it starts the explorer in this process (embedded model, API only) on a free port.
 */
import { availableParallelism, cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../src/io/safetensors.js';
import { buildExplorer } from '../src/server/app.js';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '5' },
    workers: { type: 'string' },
    url: { type: 'string' },
    out: { type: 'string' },
  },
});
const clients = Number(values.clients);
const seconds = Number(values.seconds);
const warmup = Number(values.warmup);

const explorer = values.url
  ? null
  : await buildExplorer({ webDir: null, workers: values.workers ? Number(values.workers) : undefined });
const base = values.url ?? (await explorer!.app.listen({ host: '127.0.0.1', port: 0 }));
const { models } = (await (await fetch(`${base}/api/models`)).json()) as {
  models: Array<{ id: string; title: string; warning: string | null }>;
};
const health = (await (await fetch(`${base}/api/health`)).json()) as {
  backend: string;
  workers: number;
  threadsPerWorker: number;
};
const samples = Array.from({ length: 10 }, (_, c) => `fashion-${c}`);

interface Sample {
  route: string;
  ms: number;
  status: number;
}
const done: Sample[] = [];
const pairs: number[] = [];
let measuring = false;
let stop = false;

async function call(route: string, body: unknown): Promise<Sample> {
  const started = performance.now();
  const r = await fetch(`${base}/api/${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  await r.arrayBuffer();
  return { route, ms: performance.now() - started, status: r.status };
}

async function client(k: number): Promise<void> {
  for (let i = k; !stop; i += clients) {
    const image = { sample: samples[i % samples.length] };
    const started = performance.now();
    const a = await call('classify', { image });
    const b = await call('explain', { image, method: 'rollout' });
    if (measuring) {
      done.push(a, b);
      if (a.status === 200 && b.status === 200) pairs.push(performance.now() - started);
    }
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function summary(ms: number[]) {
  const sorted = [...ms].sort((a, b) => a - b);
  const round = (v: number) => Number(v.toFixed(1));
  return {
    count: ms.length,
    perSecond: Number((ms.length / seconds).toFixed(2)),
    p50: round(percentile(sorted, 50)),
    p95: round(percentile(sorted, 95)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted[sorted.length - 1] ?? Number.NaN),
  };
}

// The machine may be shared: its 1-minute load average before and after says how busy it was.
const loadBefore = Number(loadavg()[0].toFixed(1));
console.log(
  `${clients} clients, ${warmup} s warm-up, ${seconds} s measured, against ${base} (${models[0].title})`,
);
const running = Array.from({ length: clients }, (_, k) => client(k));
await new Promise((r) => setTimeout(r, warmup * 1000));
measuring = true;
await new Promise((r) => setTimeout(r, seconds * 1000));
measuring = false;
stop = true;
await Promise.all(running);
await explorer?.app.close();

const ok = done.filter((s) => s.status === 200);
const result = {
  date: new Date().toISOString(),
  model: models[0].id,
  modelTitle: models[0].title,
  clients,
  seconds,
  workers: health.workers,
  threadsPerWorker: health.threadsPerWorker,
  backend: health.backend,
  cpus: `${availableParallelism()} x ${cpus()[0]?.model ?? 'unknown'}`,
  loadAverage: { before: loadBefore, after: Number(loadavg()[0].toFixed(1)) },
  requests: summary(ok.map((s) => s.ms)),
  classify: summary(ok.filter((s) => s.route === 'classify').map((s) => s.ms)),
  explainRollout: summary(ok.filter((s) => s.route === 'explain').map((s) => s.ms)),
  classifyPlusRollout: summary(pairs),
  errors: Object.fromEntries(
    [...new Set(done.filter((s) => s.status !== 200).map((s) => s.status))].map((code) => [
      code,
      done.filter((s) => s.status === code).length,
    ]),
  ),
  command: `node --import tsx scripts/load_test.ts ${process.argv.slice(2).join(' ')}`.trim(),
};
console.table({
  'all requests': result.requests,
  classify: result.classify,
  'explain rollout': result.explainRollout,
  'classify + rollout': result.classifyPlusRollout,
});
console.log(`errors: ${JSON.stringify(result.errors)}; backend ${result.backend}; workers ${result.workers}`);
if (values.out) writeFileAtomic(values.out, `${JSON.stringify(result, null, 2)}\n`);
