/**
 * Part 3: attention alone at N = 197, 577, 1024 and 4096 tokens (12 heads, d = 64, batch 1): the
 * fused kernel (F.scaledDotProductAttention: tiled online softmax) against the unfused composition
 * (matmul, scale, softmax, matmul), each in its own process for time and peak memory.
 */
import { nativeStatus } from '../src/backend/native.js';
import { fixed, type PartResult, type Row, runJson } from './common.js';

export const ATTENTION_TOKENS = [197, 577, 1024, 4096];

interface Run {
  ms: number;
  peakMB: number;
}

function run(n: number, mode: 'fused' | 'unfused'): Run {
  return runJson<Run>(process.execPath, [
    '--expose-gc',
    '--import',
    'tsx',
    new URL('attention_worker.ts', import.meta.url).pathname,
    '--n',
    String(n),
    '--mode',
    mode,
  ]);
}

export function attentionBench(): PartResult {
  const status = nativeStatus();
  const rows: Row[] = ATTENTION_TOKENS.map((n) => {
    const fused = run(n, 'fused');
    const unfused = run(n, 'unfused');
    return {
      tokens: n,
      fusedMs: fixed(fused.ms, 2),
      unfusedMs: fixed(unfused.ms, 2),
      speedup: fixed(unfused.ms / fused.ms, 2),
      fusedMB: fixed(fused.peakMB, 1),
      unfusedMB: fixed(unfused.peakMB, 1),
      fusedKBPerToken: fixed((fused.peakMB * 1024) / n, 1),
    };
  });
  const backend = status.loaded ? `native (${status.isa}, ${status.threads} threads)` : 'js';
  return {
    part: 'attention',
    rows,
    notes: [
      `backend ${backend}; batch 1, 12 heads, d 64; best of >= 3 runs; memory = peak RSS one call adds over its inputs`,
    ],
  };
}

export const ATTENTION_COLUMNS: Array<[string, string]> = [
  ['tokens', 'N'],
  ['fusedMs', 'fused ms'],
  ['unfusedMs', 'unfused ms'],
  ['speedup', 'unfused / fused'],
  ['fusedMB', 'fused MB'],
  ['unfusedMB', 'unfused MB'],
  ['fusedKBPerToken', 'fused KB / token'],
];
