/**
 * Part 1: SGEMM GFLOP/s at 1024^3 and at ViT-B/16 batch-8 shapes, glimpse's native kernel against
 * PyTorch's torch.mm (its BLAS, same thread count) and against the machine's peak from a tight FMA
 * loop. The engines alternate shape by shape, three times over, and each keeps its best run, so that a burst of
 * load from other processes does not land on one side only.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { measurePeakFlops, nativeKernels, nativeStatus } from '../src/backend/native.js';
import { BENCH_DIR, bestMs, fixed, type PartResult, PYTHON, pythonHas, type Row } from './common.js';

/** (m, k, n): C (m, n) = A (m, k) B (k, n). ViT-B/16 at batch 8 has 8 * 197 = 1576 tokens. */
export const GEMM_SHAPES: Array<[number, number, number, string]> = [
  [1024, 1024, 1024, 'square'],
  [1576, 768, 2304, 'qkv'],
  [1576, 768, 768, 'attention proj'],
  [1576, 768, 3072, 'mlp fc1'],
  [1576, 3072, 768, 'mlp fc2'],
];

const MIN_TRIALS = 5;
const MIN_SECONDS = 1.5;
const ROUNDS = 3;

class TorchGemm {
  private readonly child;
  private readonly lines;

  constructor(threads: number) {
    this.child = spawn(PYTHON, [`${BENCH_DIR}peers/torch_gemm.py`, String(threads)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  async next(): Promise<Record<string, unknown>> {
    const r = await this.lines.next();
    if (r.done) throw new Error('torch_gemm.py exited early');
    return JSON.parse(r.value) as Record<string, unknown>;
  }

  async gflops(m: number, k: number, n: number): Promise<number> {
    this.child.stdin.write(`${m} ${k} ${n} ${MIN_TRIALS} ${MIN_SECONDS}\n`);
    return (await this.next()).gflops as number;
  }

  close(): void {
    this.child.stdin.end();
  }
}

function glimpseGflops(m: number, k: number, n: number, transB: boolean): number {
  const kernels = nativeKernels!;
  const a = new Float32Array(m * k).map(() => Math.random() - 0.5);
  const b = new Float32Array(k * n).map(() => Math.random() - 0.5);
  const c = new Float32Array(m * n);
  const ms = bestMs(
    () => kernels.gemm({ a, b, c, batch: 1, m, n, k, transB }),
    MIN_TRIALS,
    MIN_SECONDS * 1000,
  );
  return (2 * m * n * k) / (ms / 1000) / 1e9;
}

export async function gemmBench(): Promise<PartResult> {
  const status = nativeStatus();
  if (!status.loaded) return { part: 'gemm', rows: [], notes: [`skipped: ${status.reason}`] };
  const threads = status.threads ?? 1;
  const notes: string[] = [];
  const peak = () => measurePeakFlops(threads) / 1e9;
  let peakGflops = peak();
  const torch = pythonHas('torch') ? new TorchGemm(threads) : null;
  if (torch) {
    const info = await torch.next();
    notes.push(`PyTorch ${info.torch} (${info.blas}), torch.set_num_threads(${info.threads})`);
  } else {
    notes.push(`PyTorch unavailable (${PYTHON} -c "import torch" failed): no peer column`);
  }
  const best = new Map<string, { glimpse: number; glimpseBT: number; torch: number | null }>();
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const [m, k, n] of GEMM_SHAPES) {
        const key = `${m}x${k}x${n}`;
        const prev = best.get(key) ?? { glimpse: 0, glimpseBT: 0, torch: null };
        const g = glimpseGflops(m, k, n, false);
        const gt = glimpseGflops(m, k, n, true);
        const t = torch ? await torch.gflops(m, k, n) : null;
        best.set(key, {
          glimpse: Math.max(prev.glimpse, g),
          glimpseBT: Math.max(prev.glimpseBT, gt),
          torch: t === null ? null : Math.max(prev.torch ?? 0, t),
        });
      }
      // After every round: on a loaded machine a single measurement may catch the cores busy.
      peakGflops = Math.max(peakGflops, peak());
    }
  } finally {
    torch?.close();
  }
  notes.push(
    `peak ${fixed(peakGflops, 0)} GFLOP/s: ${status.isa} FMA loop, ${threads} thread(s), best of 20 runs before the GEMMs and after each round`,
  );
  const rows: Row[] = GEMM_SHAPES.map(([m, k, n, what]) => {
    const r = best.get(`${m}x${k}x${n}`)!;
    return {
      shape: `${m}x${k}x${n}`,
      what,
      glimpse: fixed(r.glimpse),
      glimpseBT: fixed(r.glimpseBT),
      torch: fixed(r.torch),
      vsTorch: r.torch ? fixed(r.glimpse / r.torch, 2) : '-',
      ofPeak: `${fixed((100 * r.glimpse) / peakGflops, 0)}%`,
    };
  });
  return { part: 'gemm', rows, notes };
}

export const GEMM_COLUMNS: Array<[string, string]> = [
  ['shape', 'M x K x N'],
  ['what', 'ViT-B/16 layer'],
  ['glimpse', 'glimpse GFLOP/s'],
  ['glimpseBT', 'glimpse, B^T'],
  ['torch', 'torch.mm GFLOP/s'],
  ['vsTorch', 'glimpse / torch'],
  ['ofPeak', 'glimpse / peak'],
];
