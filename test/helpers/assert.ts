/** Numeric assertions with messages that say where and by how much two tensors differ. */
import assert from 'node:assert/strict';
import { fmt } from '../../src/tensor/shape.js';
import type { Tensor } from '../../src/tensor/tensor.js';

/** |a - b| <= tol + tol * |b| elementwise (the fixtures' rtol_atol rule); NaN must match NaN. */
export function assertClose(
  actual: Tensor | ArrayLike<number>,
  expected: Tensor | ArrayLike<number>,
  tol = 1e-4,
  what = '',
): void {
  const a = 'data' in actual ? actual.data : actual;
  const e = 'data' in expected ? expected.data : expected;
  if ('shape' in actual && 'shape' in expected) {
    assert.equal(
      actual.size,
      expected.size,
      `${what}: shape ${fmt((actual as Tensor).shape)} vs expected ${fmt((expected as Tensor).shape)}`,
    );
  }
  assert.equal(a.length, e.length, `${what}: length ${a.length} vs expected ${e.length}`);
  let worst = -1;
  let worstErr = 0;
  let bad = 0;
  for (let i = 0; i < a.length; i++) {
    const x = Number(a[i]);
    const y = Number(e[i]);
    if (Number.isNaN(y) ? !Number.isNaN(x) : !(Math.abs(x - y) <= tol + tol * Math.abs(y)) && x !== y) {
      bad++;
      const err = Number.isNaN(x) ? Infinity : Math.abs(x - y);
      if (worst < 0 || err > worstErr) {
        worst = i;
        worstErr = err;
      }
    }
  }
  if (bad > 0) {
    assert.fail(
      `${what}: ${bad}/${a.length} elements differ beyond tol ${tol}; worst at ${worst}: got ${a[worst]}, expected ${e[worst]}`,
    );
  }
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(Number(a[i]) - Number(b[i])));
  return m;
}
