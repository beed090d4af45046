/**
 * Speed of the Itti-Koch-Niebur model: a 512x512 image end to end, against the straightforward
 * NumPy/SciPy implementation of the same pipeline (tools/itti_numpy.py under /usr/bin/python3)
 * measured in the same run, which also checks that both compute the same saliency map.
 *
 * `benchSaliency()` returns rows for the bench table; run this file alone to print them and write
 * bench/results/saliency.json:  node --import tsx bench/saliency.ts [--repeat N] [--rounds R]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { readImage, type Tensor } from '../src/index.js';
import { ittiSaliency, scanpath, searchArray } from '../src/saliency/index.js';

export interface SaliencyBenchRow {
  name: string;
  /** Median ms per run, glimpse. */
  glimpse_ms: number;
  peer: string;
  /** Median ms per run of the peer in the same process run; null when it could not run. */
  peer_ms: number | null;
  /** peer_ms / glimpse_ms: above 1 means glimpse is faster. */
  speedup: number | null;
  note: string;
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const PHOTO = '/work/shared/images/astronaut.png';

function median(times: number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** ms of each of `repeat` runs, after two warm-up runs. */
function timeRuns(fn: () => void, repeat: number): number[] {
  fn();
  fn();
  const times: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  return times;
}

/** A 512x512 photograph when the shared images are there, else a generated search array. */
async function benchImage(): Promise<{ image: Tensor; what: string }> {
  if (existsSync(PHOTO)) {
    const image = await readImage(PHOTO);
    if (image.shape[1] === 512 && image.shape[2] === 512) return { image, what: 'astronaut.png' };
  }
  return { image: searchArray({ kind: 'color', seed: 1, size: 512 }).image, what: 'a 512x512 search array' };
}

/** Runs tools/itti_numpy.py on the same image; its timing and its saliency map, or why it could not run. */
function runNumpy(image: Tensor, repeat: number) {
  const [, h, w] = image.shape;
  const dir = mkdtempSync(join(tmpdir(), 'glimpse-bench-saliency-'));
  try {
    const input = join(dir, 'image.f32');
    const output = join(dir, 'saliency.f32');
    const data = image.data as Float32Array;
    writeFileSync(input, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    const r = spawnSync(
      '/usr/bin/python3',
      [
        join(root, 'tools', 'itti_numpy.py'),
        input,
        String(h),
        String(w),
        '--repeat',
        String(repeat),
        '--out',
        output,
      ],
      { encoding: 'utf8', timeout: 600_000 },
    );
    if (r.error || r.status !== 0) {
      const why = r.error?.message ?? r.stderr.trim().split('\n').at(-1) ?? `exit ${r.status}`;
      return { error: `numpy peer did not run: ${why}` };
    }
    const report = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
      times_ms: number[];
      numpy: string;
      scipy: string;
    };
    const bytes = readFileSync(output);
    const saliency = new Float32Array(
      bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
    );
    return { report, saliency };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchSaliency(
  options: { repeat?: number; rounds?: number } = {},
): Promise<SaliencyBenchRow[]> {
  const repeat = options.repeat ?? 10;
  const rounds = options.rounds ?? 3;
  const { image, what } = await benchImage();
  const ours = ittiSaliency(image);
  // Rounds alternate glimpse and the peer, so that a busy machine slows both alike.
  const oursTimes: number[] = [];
  const peerTimes: number[] = [];
  let peer: ReturnType<typeof runNumpy> | null = null;
  for (let round = 0; round < rounds; round++) {
    oursTimes.push(...timeRuns(() => ittiSaliency(image), repeat));
    if (peer && 'error' in peer) continue;
    peer = runNumpy(image, repeat);
    if (!('error' in peer)) peerTimes.push(...peer.report!.times_ms);
  }
  const oursMs = median(oursTimes);
  const scanMs = median(timeRuns(() => scanpath(ours, { fixations: 5 }), repeat));
  // The model runs on Float32Array planes of its own (no backend kernels), so js and native match.
  const rows: SaliencyBenchRow[] = [];
  if (!peer || 'error' in peer) {
    rows.push({
      name: 'itti saliency 512x512',
      glimpse_ms: oursMs,
      peer: 'numpy/scipy',
      peer_ms: null,
      speedup: null,
      note: `${what}; ${peer?.error ?? 'no rounds'}`,
    });
  } else {
    const a = ours.saliency.data as Float32Array;
    const b = peer.saliency!;
    let diff = 0;
    let max = 0;
    for (let i = 0; i < a.length; i++) {
      diff = Math.max(diff, Math.abs(a[i] - b[i]));
      max = Math.max(max, Math.abs(b[i]));
    }
    const same =
      a.length === b.length
        ? `max |diff| ${(diff / (max || 1)).toExponential(1)} of the map's max`
        : 'shapes differ';
    const peerMs = median(peerTimes);
    rows.push({
      name: 'itti saliency 512x512',
      glimpse_ms: oursMs,
      peer: `numpy ${peer.report!.numpy} / scipy ${peer.report!.scipy}`,
      peer_ms: peerMs,
      speedup: peerMs / oursMs,
      note: `${what}; ${rounds} alternating rounds of ${repeat} runs, medians; same pipeline, ${same}`,
    });
  }
  rows.push({
    name: 'itti scanpath, 5 fixations',
    glimpse_ms: scanMs,
    peer: '-',
    peer_ms: null,
    speedup: null,
    note: 'WTA + IOR on the 32x32 saliency map',
  });
  return rows;
}

function printTable(rows: SaliencyBenchRow[]): void {
  const fmt = (v: number | null, digits = 1) => (v === null ? '-' : v.toFixed(digits));
  const lines = [
    ['benchmark', 'glimpse ms', 'peer', 'peer ms', 'speedup', 'note'],
    ...rows.map((r) => [
      r.name,
      fmt(r.glimpse_ms),
      r.peer,
      fmt(r.peer_ms),
      r.speedup === null ? '-' : `${fmt(r.speedup, 2)}x`,
      r.note,
    ]),
  ];
  const widths = lines[0].map((_, k) => Math.max(...lines.map((l) => l[k].length)));
  for (const l of lines)
    console.log(
      l
        .map((c, k) => c.padEnd(widths[k]))
        .join('  ')
        .trimEnd(),
    );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name: string) => {
    const k = process.argv.indexOf(name);
    return k > 0 ? Number(process.argv[k + 1]) : undefined;
  };
  const rows = await benchSaliency({ repeat: arg('--repeat'), rounds: arg('--rounds') });
  printTable(rows);
  const out = join(root, 'bench', 'results', 'saliency.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), rows }, null, 2)}\n`);
  console.log(`wrote ${out}`);
}
