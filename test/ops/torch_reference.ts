/** Cases of test/ops/loss_reference.json (written by tools/torch_loss_reference.py with torch). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tensor } from '../../src/ops/creation.js';
import type { Tensor } from '../../src/tensor/tensor.js';

type Stored = { shape: number[]; data: number[] } | number;
const cases: Record<string, Record<string, Stored>> = JSON.parse(
  readFileSync(join(import.meta.dirname, 'loss_reference.json'), 'utf8'),
).cases;

export interface ReferenceCase {
  /** A stored tensor as float32 (a fresh copy, safe to mark requiresGrad). */
  f(key: string): Tensor;
  /** A stored tensor as int64 (class indices). */
  i(key: string): Tensor;
  /** A stored plain number (an option such as the smoothing). */
  n(key: string): number;
}

export function reference(name: string): ReferenceCase {
  const c = cases[name];
  if (!c) throw new Error(`loss_reference.json has no case '${name}'`);
  const stored = (key: string): { shape: number[]; data: number[] } => {
    const v = c[key];
    if (v === undefined || typeof v === 'number') throw new Error(`case '${name}' has no tensor '${key}'`);
    return v;
  };
  return {
    f: (key) => tensor(Float32Array.from(stored(key).data), stored(key).shape),
    i: (key) => tensor(Float64Array.from(stored(key).data), stored(key).shape, 'int64'),
    n: (key) => {
      const v = c[key];
      if (typeof v !== 'number') throw new Error(`case '${name}' has no number '${key}'`);
      return v;
    },
  };
}
