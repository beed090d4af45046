/**
 * Part 2: ViT-B/16 (224 x 224) inference images/s at batch 1 and 8 with the peak RSS of each
 * process: glimpse (native backend) against onnxruntime-node running torchvision's vit_b_16 exported
 * to ONNX (bench/export_vit_onnx.py, cached in bench/.cache, not committed) and against PyTorch,
 * all with the same thread count. Weights are random: only speed and memory are measured.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { nativeStatus } from '../src/backend/native.js';
import {
  BENCH_DIR,
  fixed,
  type PartResult,
  PYTHON,
  pythonHas,
  type Row,
  runJson,
  runWorker,
} from './common.js';

export const VIT_BATCHES = [1, 8];
const ONNX_PATH = `${BENCH_DIR}.cache/vit_b_16.onnx`;

interface Run {
  imagesPerSecond: number;
  peakRssMB: number;
}

/** The ONNX graph, exported once with PyTorch; null (and why) when it cannot be made. */
function onnxModel(notes: string[]): string | null {
  if (existsSync(ONNX_PATH)) return ONNX_PATH;
  if (!pythonHas('torch', 'torchvision')) {
    notes.push('onnxruntime skipped: exporting the ONNX graph needs python3 with torch and torchvision');
    return null;
  }
  mkdirSync(`${BENCH_DIR}.cache`, { recursive: true });
  console.log(`exporting torchvision vit_b_16 to ${ONNX_PATH} ...`);
  const r = spawnSync(PYTHON, [`${BENCH_DIR}export_vit_onnx.py`, ONNX_PATH], { stdio: 'inherit' });
  if (r.status !== 0 || !existsSync(ONNX_PATH)) {
    notes.push('onnxruntime skipped: the ONNX export failed');
    return null;
  }
  return ONNX_PATH;
}

function attempt(what: string, notes: string[], fn: () => Run): Run | null {
  try {
    return fn();
  } catch (e) {
    notes.push(`${what} failed: ${(e as Error).message.slice(0, 300)}`);
    return null;
  }
}

export function vitBench(threads: number): PartResult {
  const notes: string[] = [];
  const status = nativeStatus();
  const onnx = onnxModel(notes);
  const torch = pythonHas('torch', 'torchvision');
  if (!torch) notes.push('PyTorch skipped: python3 cannot import torch and torchvision');
  const rows: Row[] = [];
  for (const batch of VIT_BATCHES) {
    const iterations = String(batch === 1 ? 10 : 4);
    const common = ['--batch', String(batch), '--iterations', iterations, '--threads', String(threads)];
    const glimpse = attempt(`glimpse batch ${batch}`, notes, () =>
      runWorker<Run>('vit_worker.ts', ['--engine', 'glimpse', ...common], {
        GLIMPSE_THREADS: String(threads),
      }),
    );
    const ort = onnx
      ? attempt(`onnxruntime batch ${batch}`, notes, () =>
          runWorker<Run>('vit_worker.ts', ['--engine', 'onnxruntime', '--model', onnx, ...common]),
        )
      : null;
    const pt = torch
      ? attempt(`PyTorch batch ${batch}`, notes, () =>
          runJson<Run>(PYTHON, [
            `${BENCH_DIR}peers/torch_vit.py`,
            String(batch),
            String(threads),
            iterations,
          ]),
        )
      : null;
    rows.push({
      batch,
      glimpse: fixed(glimpse?.imagesPerSecond, 2),
      onnxruntime: fixed(ort?.imagesPerSecond, 2),
      torch: fixed(pt?.imagesPerSecond, 2),
      vsOrt: glimpse && ort ? fixed(glimpse.imagesPerSecond / ort.imagesPerSecond, 2) : '-',
      vsTorch: glimpse && pt ? fixed(glimpse.imagesPerSecond / pt.imagesPerSecond, 2) : '-',
      glimpseRss: fixed(glimpse?.peakRssMB, 0),
      ortRss: fixed(ort?.peakRssMB, 0),
      torchRss: fixed(pt?.peakRssMB, 0),
    });
  }
  const backend = status.loaded ? `native (${status.isa})` : 'js';
  notes.unshift(
    `${threads} thread(s) each (onnxruntime intraOpNumThreads, torch.set_num_threads); glimpse backend ${backend}; best of 10 (batch 1) or 4 (batch 8) runs after a warm-up; RSS = peak of each process; glimpse linear weights pre-packed once in place (prepackForInference)`,
  );
  return { part: 'vit', rows, notes };
}

export const VIT_COLUMNS: Array<[string, string]> = [
  ['batch', 'batch'],
  ['glimpse', 'glimpse img/s'],
  ['onnxruntime', 'onnxruntime img/s'],
  ['torch', 'torch img/s'],
  ['vsOrt', 'glimpse / ort'],
  ['vsTorch', 'glimpse / torch'],
  ['glimpseRss', 'glimpse MB'],
  ['ortRss', 'ort MB'],
  ['torchRss', 'torch MB'],
];
