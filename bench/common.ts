/** Shared pieces of the benchmark: timing, child processes, peers' availability, tables. */
import { spawnSync } from 'node:child_process';
import { availableParallelism, cpus } from 'node:os';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));
export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const PYTHON = '/usr/bin/python3';

export type Row = Record<string, string | number | null>;

export interface PartResult {
  part: string;
  rows: Row[];
  notes: string[];
}

/**
 * Best (shortest) time in ms of `fn` over at least `minTrials` runs and at least `minMs` in total.
 * On a shared machine the best run is the one least disturbed by other processes.
 */
export function bestMs(fn: () => void, minTrials = 3, minMs = 1000, maxTrials = 200): number {
  let best = Number.POSITIVE_INFINITY;
  const start = performance.now();
  for (let t = 0; t < maxTrials && (t < minTrials || performance.now() - start < minMs); t++) {
    const t0 = performance.now();
    fn();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

/** Whether /usr/bin/python3 can import every module named. */
export function pythonHas(...modules: string[]): boolean {
  const r = spawnSync(PYTHON, ['-c', modules.map((m) => `import ${m}`).join('; ')], { stdio: 'ignore' });
  return r.status === 0;
}

/** Runs a child process that prints one JSON object as its last line of stdout; throws with its stderr. */
export function runJson<T>(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 900_000,
): T {
  const r = spawnSync(cmd, args, {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, ...env },
    maxBuffer: 16 << 20,
    timeout: timeoutMs,
  });
  const lines = (r.stdout ?? '').trim().split('\n');
  const last = lines[lines.length - 1];
  if (r.status !== 0 || !last?.startsWith('{')) {
    const why = r.error ? r.error.message : (r.stderr ?? '').trim().split('\n').slice(-5).join(' | ');
    throw new Error(`${cmd} ${args.join(' ')} failed (status ${r.status}): ${why}`);
  }
  return JSON.parse(last) as T;
}

/** Runs a TypeScript worker of the benchmark in a fresh node process (its peak RSS is its own). */
export function runWorker<T>(script: string, args: string[], env: Record<string, string> = {}): T {
  return runJson<T>(process.execPath, ['--import', 'tsx', `${BENCH_DIR}${script}`, ...args], env);
}

export function machine(): { cpu: string; cores: number; node: string } {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    node: process.version,
  };
}

export const fixed = (x: number | null | undefined, digits = 1): string =>
  x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(digits);

/** Prints rows as an aligned text table with the given columns (key, header). */
export function printTable(title: string, rows: Row[], columns: Array<[string, string]>): void {
  const cells = rows.map((r) => columns.map(([k]) => String(r[k] ?? '-')));
  const widths = columns.map(([, h], i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((s, i) => s.padStart(widths[i])).join('  ');
  console.log(`\n${title}`);
  console.log(line(columns.map(([, h]) => h)));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const c of cells) console.log(line(c));
}
