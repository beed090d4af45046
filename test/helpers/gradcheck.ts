/**
 * Gradient check against central finite differences. The scalar objective is sum(f(inputs) * w) for a
 * fixed random w, accumulated in float64; the step is chosen for float32 compute.
 */
import assert from 'node:assert/strict';
import { randn } from '../../src/ops/creation.js';
import { noGrad } from '../../src/tensor/autograd.js';
import type { Tensor } from '../../src/tensor/tensor.js';

export interface GradcheckOptions {
  eps?: number;
  /** |analytic - numeric| <= atol + rtol * |numeric| */
  atol?: number;
  rtol?: number;
  /** Check at most this many coordinates per input (spread over the tensor). */
  maxChecks?: number;
  name?: string;
}

export function gradcheck(
  f: (...xs: Tensor[]) => Tensor,
  inputs: Tensor[],
  options: GradcheckOptions = {},
): void {
  const eps = options.eps ?? 1e-2;
  const atol = options.atol ?? 2e-3;
  const rtol = options.rtol ?? 2e-2;
  const maxChecks = options.maxChecks ?? 60;
  const name = options.name ?? f.name ?? 'op';
  for (const x of inputs) if (x.dtype === 'float32') x.requiresGrad = true;
  const out = f(...inputs);
  const w = noGrad(() => randn(out.shape));
  const objective = (): number =>
    noGrad(() => {
      const y = f(...inputs);
      let s = 0;
      for (let i = 0; i < y.size; i++) s += y.data[i] * w.data[i];
      return s;
    });
  for (const x of inputs) x.grad = null;
  out.backward(w);
  inputs.forEach((x, xi) => {
    if (x.dtype !== 'float32') return;
    assert.ok(x.grad, `${name}: input ${xi} received no gradient`);
    const g = x.grad as Tensor;
    const step = Math.max(1, Math.floor(x.size / maxChecks));
    for (let i = 0; i < x.size; i += step) {
      const orig = x.data[i];
      x.data[i] = orig + eps;
      const fp = objective();
      x.data[i] = orig - eps;
      const fm = objective();
      x.data[i] = orig;
      const numeric = (fp - fm) / (2 * eps);
      const analytic = g.data[i];
      assert.ok(
        Math.abs(analytic - numeric) <= atol + rtol * Math.abs(numeric),
        `${name}: d/d input${xi}[${i}] analytic ${analytic} vs numeric ${numeric}`,
      );
    }
  });
}
