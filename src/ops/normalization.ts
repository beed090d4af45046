/** softmax / logSoftmax along any dim and layer norm over the trailing dims. */
import { kernels } from '../backend/backend.js';
import { record } from '../tensor/autograd.js';
import { emptyFloat32 } from '../tensor/dtype.js';
import { fmt, normalizeAxis, sizeOf } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { binaryRaw, sumToShape } from './elementwise.js';
import { transpose } from './shape.js';
import { sum } from './reduce.js';
import { noGrad } from '../tensor/autograd.js';

function softmaxLast(x: Tensor, log: boolean): Tensor {
  const cols = x.shape[x.ndim - 1] ?? 1;
  const rows = x.size / Math.max(cols, 1);
  const out = emptyFloat32(x.size);
  kernels().softmax(x.data as Float32Array, rows, cols, out, log);
  const y = new Tensor(out, x.shape);
  return record(y, log ? 'logSoftmax' : 'softmax', [x], (g) =>
    noGrad(() => {
      if (log) {
        // dx = g - softmax(x) * sum(g)
        const s = sum(g, -1, true);
        return [binaryRaw('sub', g, binaryRaw('mul', y.exp(), s))];
      }
      // dx = y * (g - sum(g * y))
      const s = sum(binaryRaw('mul', g, y), -1, true);
      return [binaryRaw('mul', y, binaryRaw('sub', g, s))];
    }),
  );
}

function alongDim(x: Tensor, dim: number, log: boolean, op: string): Tensor {
  if (x.dtype !== 'float32') throw new Error(`${op}: expected float32 input, got ${x.dtype}`);
  if (x.ndim === 0) return softmaxLast(x.reshape([1]), log).reshape([]);
  const d = normalizeAxis(dim, x.ndim, op);
  if (d === x.ndim - 1) return softmaxLast(x, log);
  return transpose(softmaxLast(transpose(x, d, -1), log), d, -1);
}

export function softmax(x: Tensor, dim = -1): Tensor {
  return alongDim(x, dim, false, 'softmax');
}

export function logSoftmax(x: Tensor, dim = -1): Tensor {
  return alongDim(x, dim, true, 'logSoftmax');
}

/** F.layerNorm(x, normalizedShape, weight, bias, eps) with torch's default eps 1e-5. */
export function layerNorm(
  x: Tensor,
  normalizedShape: readonly number[],
  weight?: Tensor | null,
  bias?: Tensor | null,
  eps = 1e-5,
): Tensor {
  const k = normalizedShape.length;
  const tail = x.shape.slice(x.ndim - k);
  if (k > x.ndim || tail.some((s, i) => s !== normalizedShape[i])) {
    throw new Error(
      `layerNorm: input ${fmt(x.shape)} does not end with normalized shape ${fmt(normalizedShape)}`,
    );
  }
  for (const [name, p] of [
    ['weight', weight],
    ['bias', bias],
  ] as const) {
    if (p && sizeOf(p.shape) !== sizeOf(normalizedShape)) {
      throw new Error(
        `layerNorm: ${name} ${fmt(p.shape)} does not match normalized shape ${fmt(normalizedShape)}`,
      );
    }
  }
  const cols = sizeOf(normalizedShape);
  const rows = x.size / cols;
  const out = emptyFloat32(x.size);
  const mean = new Float32Array(rows);
  const rstd = new Float32Array(rows);
  const w = weight ? (weight.data as Float32Array) : null;
  const b = bias ? (bias.data as Float32Array) : null;
  kernels().layerNorm(x.data as Float32Array, rows, cols, w, b, eps, out, mean, rstd);
  const parents = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  return record(new Tensor(out, x.shape), 'layerNorm', parents, (g) => {
    const gx = emptyFloat32(x.size);
    const gw = weight ? new Float32Array(cols) : null;
    const gb = bias ? new Float32Array(cols) : null;
    kernels().layerNormBackward(
      x.data as Float32Array,
      g.data as Float32Array,
      rows,
      cols,
      w,
      mean,
      rstd,
      gx,
      gw,
      gb,
    );
    const grads: Tensor[] = [new Tensor(gx, x.shape)];
    if (weight && gw) grads.push(sumToShape(new Tensor(gw, weight.shape), weight.shape));
    if (bias && gb) grads.push(new Tensor(gb, bias.shape));
    return grads;
  });
}
