/**
 * Finite-difference gradient check for deep piecewise-linear networks (ReLU, leaky ReLU, max pool):
 * a step of eps moves many units across a kink, and there the central difference is not a
 * derivative. Each checked coordinate also takes both one-sided differences; where they disagree
 * the function has a kink within eps of the point and the coordinate is skipped; everywhere else the
 * analytic gradient must match the central difference. The default step is large (1e-2) because a
 * deep float32 network's rounding noise, divided by a small step, swamps the difference. Fails when more than `maxSkipped` of the
 * coordinates had to be skipped, so a broken backward cannot hide behind the skips.
 */
import assert from 'node:assert/strict';
import { randn } from '../../src/ops/creation.js';
import { noGrad } from '../../src/tensor/autograd.js';
import type { Tensor } from '../../src/tensor/tensor.js';

export interface KinkGradcheckOptions {
  eps?: number;
  atol?: number;
  rtol?: number;
  maxChecks?: number;
  /** Largest share of coordinates allowed to sit near a kink (default 0.3). */
  maxSkipped?: number;
  name?: string;
}

export function gradcheckAwayFromKinks(
  f: (...xs: Tensor[]) => Tensor,
  inputs: Tensor[],
  options: KinkGradcheckOptions = {},
): void {
  const { eps = 1e-2, atol = 5e-3, rtol = 3e-2, maxChecks = 40, maxSkipped = 0.3, name = 'f' } = options;
  for (const x of inputs) x.requiresGrad = true;
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
  const f0 = objective();
  inputs.forEach((x, xi) => {
    const g = x.grad as Tensor;
    assert.ok(g, `${name}: input ${xi} received no gradient`);
    const step = Math.max(1, Math.floor(x.size / maxChecks));
    let checked = 0;
    let skipped = 0;
    for (let i = 0; i < x.size; i += step) {
      const orig = x.data[i];
      x.data[i] = orig + eps;
      const fp = objective();
      x.data[i] = orig - eps;
      const fm = objective();
      x.data[i] = orig;
      const right = (fp - f0) / eps;
      const left = (f0 - fm) / eps;
      if (Math.abs(right - left) > 2 * (atol + rtol * Math.abs(left))) {
        skipped++;
        continue;
      }
      checked++;
      const numeric = (fp - fm) / (2 * eps);
      assert.ok(
        Math.abs(g.data[i] - numeric) <= atol + rtol * Math.abs(numeric),
        `${name}: d/d input${xi}[${i}] analytic ${g.data[i]} vs numeric ${numeric}`,
      );
    }
    assert.ok(
      skipped <= maxSkipped * (checked + skipped) && checked > 0,
      `${name}: input ${xi}: ${skipped} of ${checked + skipped} coordinates sit near a kink`,
    );
  });
}
