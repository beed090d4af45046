import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Generator, tensor } from '../../src/index.js';
import { linearSumAssignment } from '../../src/vision/hungarian.js';
import { get, loadFixture } from '../helpers/fixtures.js';

function totalCost(cost: ArrayLike<number>[], rows: number[], cols: number[]): number {
  return rows.reduce((s, r, k) => s + Number(cost[r][cols[k]]), 0);
}

/** The optimum by enumerating every injective assignment of the shorter side. */
function bruteForce(cost: number[][]): number {
  const n = cost.length;
  const m = cost[0].length;
  const transpose = n > m;
  const c = transpose ? cost[0].map((_, j) => cost.map((row) => row[j])) : cost;
  const rows = Math.min(n, m);
  const cols = Math.max(n, m);
  let best = Infinity;
  const used = new Uint8Array(cols);
  const walk = (i: number, acc: number): void => {
    if (i === rows) {
      best = Math.min(best, acc);
      return;
    }
    for (let j = 0; j < cols; j++) {
      if (used[j]) continue;
      used[j] = 1;
      walk(i + 1, acc + c[i][j]);
      used[j] = 0;
    }
  };
  walk(0, 0);
  return best;
}

function checkValid(res: { rows: number[]; cols: number[] }, n: number, m: number): void {
  assert.equal(res.rows.length, Math.min(n, m));
  assert.equal(new Set(res.rows).size, res.rows.length, 'a row used twice');
  assert.equal(new Set(res.cols).size, res.cols.length, 'a column used twice');
  for (let k = 1; k < res.rows.length; k++) assert.ok(res.rows[k] > res.rows[k - 1], 'rows not increasing');
  for (const r of res.rows) assert.ok(r >= 0 && r < n);
  for (const c of res.cols) assert.ok(c >= 0 && c < m);
}

describe('linearSumAssignment vs scipy (test/fixtures/torch/scipy_hungarian)', () => {
  const m = loadFixture('torch/scipy_hungarian.io.safetensors');
  for (let i = 0; i < 5; i++) {
    test(`case ${i}: same assignment, same total cost`, () => {
      const cost = get(m, `case${i}.cost`);
      const res = linearSumAssignment(cost);
      assert.deepEqual(res.rows, [...get(m, `case${i}.rows`).data], 'rows');
      assert.deepEqual(res.cols, [...get(m, `case${i}.cols`).data], 'cols');
      const rows = cost.toArray() as number[][];
      const expected = totalCost(rows, [...get(m, `case${i}.rows`).data], [...get(m, `case${i}.cols`).data]);
      assert.ok(Math.abs(totalCost(rows, res.rows, res.cols) - expected) <= 1e-9 * Math.max(1, expected));
    });
  }
});

describe('linearSumAssignment vs brute force', () => {
  const g = new Generator(2024);
  const shapes: Array<[number, number]> = [];
  for (let n = 1; n <= 5; n++) for (let m = 1; m <= 6; m++) shapes.push([n, m]);

  test('random real costs, square and rectangular both ways', () => {
    for (const [n, m] of shapes) {
      for (let rep = 0; rep < 4; rep++) {
        const cost = Array.from({ length: n }, () => Array.from({ length: m }, () => g.next() * 10 - 3));
        const res = linearSumAssignment(cost);
        checkValid(res, n, m);
        assert.ok(Math.abs(totalCost(cost, res.rows, res.cols) - bruteForce(cost)) < 1e-9, `${n}x${m}`);
      }
    }
  });

  test('ties: small integer costs with many equal optima', () => {
    for (const [n, m] of shapes) {
      for (let rep = 0; rep < 4; rep++) {
        const cost = Array.from({ length: n }, () =>
          Array.from({ length: m }, () => Math.floor(g.next() * 3)),
        );
        const res = linearSumAssignment(cost);
        checkValid(res, n, m);
        assert.equal(totalCost(cost, res.rows, res.cols), bruteForce(cost), `${n}x${m}`);
      }
    }
    const flat = linearSumAssignment([
      [1, 1, 1],
      [1, 1, 1],
    ]);
    checkValid(flat, 2, 3);
  });

  test('forbidden (infinite) pairs and very large costs', () => {
    for (const [n, m] of shapes) {
      for (let rep = 0; rep < 4; rep++) {
        const cost = Array.from({ length: n }, (_, i) =>
          Array.from({ length: m }, (_, j) => (i !== j && g.next() < 0.4 ? Infinity : g.next() * 1e12)),
        );
        const res = linearSumAssignment(cost);
        checkValid(res, n, m);
        const best = bruteForce(cost);
        assert.ok(Number.isFinite(best));
        assert.ok(Math.abs(totalCost(cost, res.rows, res.cols) - best) <= 1e-6 * best, `${n}x${m}`);
      }
    }
  });

  test('maximize is minimize of the negated matrix', () => {
    const cost = [
      [4, 1, 3],
      [2, 0, 5],
      [3, 2, 2],
      [1, 7, 1],
    ];
    const res = linearSumAssignment(cost, { maximize: true });
    checkValid(res, 4, 3);
    assert.equal(totalCost(cost, res.rows, res.cols), -bruteForce(cost.map((r) => r.map((v) => -v))));
    assert.equal(totalCost(cost, res.rows, res.cols), 16);
  });

  test('tensor input, empty matrices', () => {
    const t = tensor([
      [0.9, 0.1],
      [0.2, 0.8],
    ]);
    assert.deepEqual(linearSumAssignment(t), { rows: [0, 1], cols: [1, 0] });
    assert.deepEqual(linearSumAssignment([]), { rows: [], cols: [] });
    assert.deepEqual(linearSumAssignment(tensor(new Float32Array(0), [0, 3])), { rows: [], cols: [] });
    assert.deepEqual(linearSumAssignment(tensor(new Float32Array(0), [3, 0])), { rows: [], cols: [] });
  });
});

describe('linearSumAssignment: bad input', () => {
  test('infeasible, NaN, -Infinity, ragged rows', () => {
    assert.throws(
      () =>
        linearSumAssignment([
          [Infinity, 1],
          [Infinity, 2],
        ]),
      /infeasible/,
    );
    assert.throws(() => linearSumAssignment([[1, Number.NaN]]), /cost\[0\]\[1\] is NaN/);
    assert.throws(() => linearSumAssignment([[1, -Infinity]]), /-Infinity/);
    assert.throws(() => linearSumAssignment([[1, Infinity]], { maximize: true }), /Infinity/);
    assert.throws(() => linearSumAssignment([[1, 2], [3]]), /rectangular/);
  });
});
