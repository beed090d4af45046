/** In-place initializers (torch.nn.init), drawing from the global seeded generator. */
import { random, randomNormal } from '../ops/creation.js';
import type { Tensor } from '../tensor/tensor.js';

function fans(t: Tensor): [number, number] {
  if (t.ndim < 2) throw new Error(`init: fan in/out needs at least 2 dims, got [${t.shape}]`);
  const receptive = t.shape.slice(2).reduce((a, b) => a * b, 1);
  return [t.shape[1] * receptive, t.shape[0] * receptive];
}

export function uniform_(t: Tensor, a = 0, b = 1): Tensor {
  for (let i = 0; i < t.size; i++) t.data[i] = a + (b - a) * random();
  return t;
}

export function normal_(t: Tensor, mean = 0, std = 1): Tensor {
  for (let i = 0; i < t.size; i++) t.data[i] = mean + std * randomNormal();
  return t;
}

/** timm's trunc_normal_: normal(mean, std) redrawn outside [a, b] (absolute bounds, as torch). */
export function truncNormal_(t: Tensor, std = 1, mean = 0, a = -2, b = 2): Tensor {
  for (let i = 0; i < t.size; i++) {
    let v: number;
    do v = mean + std * randomNormal();
    while (v < a || v > b);
    t.data[i] = v;
  }
  return t;
}

export function constant_(t: Tensor, value: number): Tensor {
  t.data.fill(value);
  return t;
}

export const zeros_ = (t: Tensor) => constant_(t, 0);
export const ones_ = (t: Tensor) => constant_(t, 1);

export function xavierUniform_(t: Tensor, gain = 1): Tensor {
  const [fanIn, fanOut] = fans(t);
  const a = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniform_(t, -a, a);
}

export function xavierNormal_(t: Tensor, gain = 1): Tensor {
  const [fanIn, fanOut] = fans(t);
  return normal_(t, 0, gain * Math.sqrt(2 / (fanIn + fanOut)));
}

function gainFor(nonlinearity: 'relu' | 'leaky_relu' | 'linear', a: number): number {
  if (nonlinearity === 'relu') return Math.SQRT2;
  if (nonlinearity === 'leaky_relu') return Math.sqrt(2 / (1 + a * a));
  return 1;
}

export function kaimingUniform_(
  t: Tensor,
  options: { a?: number; mode?: 'fan_in' | 'fan_out'; nonlinearity?: 'relu' | 'leaky_relu' | 'linear' } = {},
): Tensor {
  const [fanIn, fanOut] = fans(t);
  const fan = options.mode === 'fan_out' ? fanOut : fanIn;
  const bound = gainFor(options.nonlinearity ?? 'leaky_relu', options.a ?? 0) * Math.sqrt(3 / fan);
  return uniform_(t, -bound, bound);
}

export function kaimingNormal_(
  t: Tensor,
  options: { a?: number; mode?: 'fan_in' | 'fan_out'; nonlinearity?: 'relu' | 'leaky_relu' | 'linear' } = {},
): Tensor {
  const [fanIn, fanOut] = fans(t);
  const fan = options.mode === 'fan_out' ? fanOut : fanIn;
  return normal_(t, 0, gainFor(options.nonlinearity ?? 'leaky_relu', options.a ?? 0) / Math.sqrt(fan));
}

/** torch's default for Linear/Conv: kaiming_uniform(a=sqrt(5)) weights, U(+-1/sqrt(fan_in)) bias. */
export function torchDefaultInit_(weight: Tensor, bias: Tensor | null): void {
  kaimingUniform_(weight, { a: Math.sqrt(5) });
  if (bias) {
    const bound = 1 / Math.sqrt(fans(weight)[0]);
    uniform_(bias, -bound, bound);
  }
}
