/**
 * The linear sum assignment problem (scipy.optimize.linear_sum_assignment): for an (n, m) cost
 * matrix, pick min(n, m) entries, at most one per row and per column, with the smallest total cost.
 * Solved exactly in O(n² m) by shortest augmenting paths with row/column potentials (the Hungarian
 * method in Jonker-Volgenant form): each row is added by a Dijkstra search over reduced costs
 * c[i][j] - u[i] - v[j] >= 0, and the potentials keep the partial assignment optimal throughout.
 */
import { fmt } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';

export interface LinearSumAssignment {
  /** Assigned row indices, increasing. */
  rows: number[];
  /** cols[k] is the column assigned to rows[k]. */
  cols: number[];
}

/**
 * Solves an (n, m) cost matrix given as nested arrays or a 2-D tensor. +Infinity marks a forbidden
 * pair (with maximize, -Infinity does); NaN and the opposite infinity are errors, as is a matrix
 * with no complete assignment of finite cost.
 */
export function linearSumAssignment(
  cost: ReadonlyArray<ArrayLike<number>> | Tensor,
  options: { maximize?: boolean } = {},
): LinearSumAssignment {
  const op = 'linearSumAssignment';
  const { values, n, m } = readMatrix(cost, op);
  const sign = options.maximize ? -1 : 1;
  for (let i = 0; i < values.length; i++) {
    const c = sign * values[i];
    if (Number.isNaN(c) || c === -Infinity) {
      throw new Error(
        `${op}: cost[${Math.floor(i / m)}][${i % m}] is ${values[i]}; costs must be numbers or ${options.maximize ? '-' : '+'}Infinity for a forbidden pair`,
      );
    }
    values[i] = c;
  }
  if (n === 0 || m === 0) return { rows: [], cols: [] };
  if (n <= m) {
    const colOfRow = solve(values, n, m, op);
    return { rows: Array.from({ length: n }, (_, i) => i), cols: colOfRow };
  }
  // More rows than columns: solve the transpose, then report by increasing row.
  const t = new Float64Array(n * m);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) t[j * n + i] = values[i * m + j];
  const rowOfCol = solve(t, m, n, op);
  const order = Array.from({ length: m }, (_, j) => j).sort((a, b) => rowOfCol[a] - rowOfCol[b]);
  return { rows: order.map((j) => rowOfCol[j]), cols: order };
}

function readMatrix(
  cost: ReadonlyArray<ArrayLike<number>> | Tensor,
  op: string,
): { values: Float64Array; n: number; m: number } {
  if ('shape' in cost && 'data' in cost) {
    const t = cost as Tensor;
    if (t.ndim !== 2 || t.dtype === 'bool') {
      throw new Error(`${op}: the cost tensor must be a 2-D numeric matrix, got ${t.dtype} ${fmt(t.shape)}`);
    }
    return { values: Float64Array.from(t.data), n: t.shape[0], m: t.shape[1] };
  }
  const rows = cost as ReadonlyArray<ArrayLike<number>>;
  const n = rows.length;
  const m = n > 0 ? rows[0].length : 0;
  const values = new Float64Array(n * m);
  rows.forEach((row, i) => {
    if (row.length !== m) {
      throw new Error(
        `${op}: row ${i} has ${row.length} costs, row 0 has ${m}; the cost matrix must be rectangular`,
      );
    }
    for (let j = 0; j < m; j++) values[i * m + j] = Number(row[j]);
  });
  return { values, n, m };
}

/** Column of each row for an (n, m) matrix with n <= m. */
function solve(c: Float64Array, n: number, m: number, op: string): number[] {
  // 1-based: index 0 of columns is the virtual column the new row starts from.
  const u = new Float64Array(n + 1);
  const v = new Float64Array(m + 1);
  const rowOfCol = new Int32Array(m + 1); // 0 = free
  const way = new Int32Array(m + 1);
  const minv = new Float64Array(m + 1);
  const used = new Uint8Array(m + 1);
  for (let i = 1; i <= n; i++) {
    rowOfCol[0] = i;
    let j0 = 0;
    minv.fill(Infinity);
    used.fill(0);
    do {
      used[j0] = 1;
      const i0 = rowOfCol[j0];
      const base = (i0 - 1) * m - 1;
      let delta = Infinity;
      let j1 = -1;
      for (let j = 1; j <= m; j++) {
        if (used[j]) continue;
        const reduced = c[base + j] - u[i0] - v[j];
        if (reduced < minv[j]) {
          minv[j] = reduced;
          way[j] = j0;
        }
        if (minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      if (j1 < 0 || delta === Infinity) {
        throw new Error(
          `${op}: the cost matrix is infeasible: row ${i - 1} cannot be assigned without a forbidden (infinite) pair`,
        );
      }
      for (let j = 0; j <= m; j++) {
        if (used[j]) {
          u[rowOfCol[j]] += delta;
          v[j] -= delta;
        } else minv[j] -= delta;
      }
      j0 = j1;
    } while (rowOfCol[j0] !== 0);
    // Flip the augmenting path back to the virtual column.
    do {
      const j1 = way[j0];
      rowOfCol[j0] = rowOfCol[j1];
      j0 = j1;
    } while (j0 !== 0);
  }
  const colOfRow = new Array<number>(n);
  for (let j = 1; j <= m; j++) if (rowOfCol[j] > 0) colOfRow[rowOfCol[j] - 1] = j - 1;
  return colOfRow;
}
