/**
 * Part 4: the training step of the small ViT that glimpse trains on Fashion-MNIST (the vit_fashion
 * preset, 0.8M parameters, 28x28 gray inputs, 4x4 patches) at batch 128: images/s of a whole step
 * (forward, loss, backward, gradient clip, AdamW) in glimpse against the same model and step written
 * in PyTorch (bench/peers/torch_train_step.py), each in its own process with the same thread count.
 */
import { nativeStatus } from '../src/backend/native.js';
import { fixed, type PartResult, PYTHON, pythonHas, type Row, runJson, runWorker } from './common.js';

export const TRAIN_STEP_BATCH = 128;

interface Run {
  imagesPerSecond: number;
  peakRssMB: number;
  parameters: number;
}

export function trainStepBench(threads: number): PartResult {
  const notes: string[] = [];
  const iterations = '5';
  const batch = String(TRAIN_STEP_BATCH);
  let glimpse: Run | null = null;
  try {
    glimpse = runWorker<Run>('train_step_worker.ts', ['--batch', batch, '--iterations', iterations], {
      GLIMPSE_THREADS: String(threads),
    });
  } catch (e) {
    notes.push(`glimpse failed: ${(e as Error).message.slice(0, 300)}`);
  }
  let torch: Run | null = null;
  if (!pythonHas('torch')) {
    notes.push('PyTorch skipped: python3 cannot import torch');
  } else {
    try {
      torch = runJson<Run>(PYTHON, ['bench/peers/torch_train_step.py', batch, String(threads), iterations]);
    } catch (e) {
      notes.push(`PyTorch failed: ${(e as Error).message.slice(0, 300)}`);
    }
  }
  if (glimpse && torch && glimpse.parameters !== torch.parameters) {
    notes.push(`parameter counts differ: glimpse ${glimpse.parameters}, PyTorch ${torch.parameters}`);
  }
  const rows: Row[] = [
    {
      batch: TRAIN_STEP_BATCH,
      parameters: glimpse?.parameters ?? torch?.parameters ?? null,
      glimpse: fixed(glimpse?.imagesPerSecond, 1),
      torch: fixed(torch?.imagesPerSecond, 1),
      vsTorch: glimpse && torch ? fixed(glimpse.imagesPerSecond / torch.imagesPerSecond, 2) : '-',
      glimpseRss: fixed(glimpse?.peakRssMB, 0),
      torchRss: fixed(torch?.peakRssMB, 0),
    },
  ];
  const status = nativeStatus();
  notes.unshift(
    `${threads} thread(s) each (torch.set_num_threads); glimpse backend ${status.loaded ? `native (${status.isa})` : 'js'}; best of ${iterations} steps after two warm-up steps; random images and labels; RSS = peak of each process`,
  );
  return { part: 'train', rows, notes };
}

export const TRAIN_STEP_COLUMNS: Array<[string, string]> = [
  ['batch', 'batch'],
  ['parameters', 'parameters'],
  ['glimpse', 'glimpse img/s'],
  ['torch', 'torch img/s'],
  ['vsTorch', 'glimpse / torch'],
  ['glimpseRss', 'glimpse MB'],
  ['torchRss', 'torch MB'],
];
