/** Loads the parity fixtures copied into test/fixtures (from ../shared/fixtures). */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors } from '../../src/io/safetensors.js';
import type { Tensor } from '../../src/tensor/tensor.js';

export const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

export function fixturePath(rel: string): string {
  return join(FIXTURES, rel);
}

/** All tensors of `torch/NAME.io.safetensors` (or peers/...). */
export function loadFixture(rel: string): Map<string, Tensor> {
  const p = fixturePath(rel);
  if (!existsSync(p)) throw new Error(`fixture ${rel} is missing from test/fixtures`);
  return readSafetensors(p).tensors;
}

export function get(m: Map<string, Tensor>, key: string): Tensor {
  const t = m.get(key);
  if (!t) throw new Error(`fixture has no tensor '${key}' (has: ${[...m.keys()].join(', ')})`);
  return t;
}

/** The rtol_atol tolerance recorded for a fixture in fixtures.json. */
export function tolerance(group: 'torch' | 'peers', name: string, fallback = 1e-4): number {
  const meta = JSON.parse(readFileSync(join(FIXTURES, group, 'fixtures.json'), 'utf8'));
  const f = meta.fixtures?.[name] ?? meta[name];
  return f?.rtol_atol ?? f?.tolerance ?? fallback;
}
