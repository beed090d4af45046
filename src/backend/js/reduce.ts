/** Reductions over the middle axis of an (outer, n, inner) view. */
export type ReduceOp = 'sum' | 'max' | 'min' | 'argmax' | 'argmin' | 'prod';

type Num = Float32Array | Int32Array | Float64Array | Uint8Array;

export function reduce(op: ReduceOp, x: Num, outer: number, n: number, inner: number, out: Num): void {
  for (let o = 0; o < outer; o++) {
    const base = o * n * inner;
    for (let i = 0; i < inner; i++) {
      let p = base + i;
      switch (op) {
        case 'sum': {
          let acc = 0;
          for (let k = 0; k < n; k++, p += inner) acc += x[p];
          out[o * inner + i] = acc;
          break;
        }
        case 'prod': {
          let acc = 1;
          for (let k = 0; k < n; k++, p += inner) acc *= x[p];
          out[o * inner + i] = acc;
          break;
        }
        case 'max':
        case 'argmax': {
          let best = -Infinity;
          let bi = 0;
          for (let k = 0; k < n; k++, p += inner) {
            const v = x[p];
            if (v > best || (v !== v && best === best)) {
              best = v;
              bi = k;
            }
          }
          out[o * inner + i] = op === 'max' ? best : bi;
          break;
        }
        case 'min':
        case 'argmin': {
          let best = Infinity;
          let bi = 0;
          for (let k = 0; k < n; k++, p += inner) {
            const v = x[p];
            if (v < best || (v !== v && best === best)) {
              best = v;
              bi = k;
            }
          }
          out[o * inner + i] = op === 'min' ? best : bi;
          break;
        }
      }
    }
  }
}
