/**
 * Runs the cases of test/fixtures/spatial/torch_spatial (tools/gen_spatial_fixtures.py): for each,
 * F[fn](...inputs, ...args, opts?) must match torch's output and the gradients of sum(out * upstream).
 */
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { F } from '../../src/index.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { assertClose } from '../helpers/assert.js';
import { fixturePath, get, loadFixture } from '../helpers/fixtures.js';

interface SpatialCase {
  fn: string;
  inputs: number;
  args: unknown[];
  opts?: Record<string, unknown>;
}

const TOL = 1e-4;

/** Registers one node:test per fixture case whose fn is in `fns`. */
export function spatialParityTests(fns: readonly string[]): void {
  const meta = JSON.parse(readFileSync(fixturePath('spatial/torch_spatial.json'), 'utf8'));
  const cases = Object.entries(meta.cases as Record<string, SpatialCase>).filter(([, c]) =>
    fns.includes(c.fn),
  );
  const fx = loadFixture('spatial/torch_spatial.io.safetensors');
  for (const [name, c] of cases) {
    test(`${name}: ${c.fn} output and gradients match torch`, () => {
      const inputs = Array.from({ length: c.inputs }, (_, i) =>
        get(fx, `${name}.in${i}`).cloneData().setRequiresGrad(),
      );
      const fn = (F as unknown as Record<string, (...a: unknown[]) => Tensor>)[c.fn];
      const y = fn(...inputs, ...c.args, ...(c.opts ? [c.opts] : []));
      assertClose(y, get(fx, `${name}.out`), TOL, `${name} output`);
      y.backward(get(fx, `${name}.upstream`));
      inputs.forEach((x, i) => {
        if (!x.grad) throw new Error(`${name}: input ${i} received no gradient`);
        assertClose(x.grad, get(fx, `${name}.grad${i}`), TOL, `${name} grad of input ${i}`);
      });
    });
  }
}
