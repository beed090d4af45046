/**
 * Optimizer arithmetic over raw parameter storage: the Adam/AdamW update of one parameter tensor and
 * the sum of squares that gradient-norm clipping needs. Semantics are torch.optim's (see
 * src/optim/adam.ts for the hyperparameters); this js version is the reference the native one is
 * checked against.
 */

export interface AdamUpdateArgs {
  param: Float32Array;
  grad: Float32Array;
  /** First and second moment estimates, updated in place. */
  expAvg: Float32Array;
  expAvgSq: Float32Array;
  /** AMSGrad's running maximum of expAvgSq, updated in place; null without AMSGrad. */
  maxExpAvgSq: Float32Array | null;
  beta1: number;
  beta2: number;
  eps: number;
  /** Adam's L2 penalty, added to the gradient (0 for AdamW). */
  l2: number;
  /** What the parameter is multiplied by before the step (AdamW's decoupled decay: 1 - lr * wd). */
  decay: number;
  /** lr / (1 - beta1^t). */
  stepSize: number;
  /** sqrt(1 - beta2^t). */
  bias2Sqrt: number;
  /** Ascend instead of descend (the gradient's sign flipped). */
  maximize: boolean;
}

/** param -= stepSize * m / (sqrt(v) / bias2Sqrt + eps), after updating m and v with the gradient. */
export function adamUpdate(a: AdamUpdateArgs): void {
  const { param, grad, expAvg: m, expAvgSq: v, maxExpAvgSq: vmax } = a;
  const { beta1: b1, beta2: b2, eps, l2, decay, stepSize, bias2Sqrt, maximize } = a;
  for (let i = 0; i < param.length; i++) {
    let g = maximize ? -grad[i] : grad[i];
    if (l2 !== 0) g += l2 * param[i];
    const p = param[i] * decay;
    m[i] = b1 * m[i] + (1 - b1) * g;
    v[i] = b2 * v[i] + (1 - b2) * g * g;
    let vi = v[i];
    if (vmax) vi = vmax[i] = Math.max(vmax[i], vi);
    param[i] = p - (stepSize * m[i]) / (Math.sqrt(vi) / bias2Sqrt + eps);
  }
}

/** out[0] = the sum of x[i]^2, accumulated in float64. */
export function sumOfSquares(x: Float32Array, out: Float64Array): void {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  out[0] = s;
}
