import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { F, full, manualSeed, rand, randn, tensor } from '../../src/index.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { assertClose } from '../helpers/assert.js';
import { get, loadFixture, tolerance } from '../helpers/fixtures.js';
import { gradcheck } from '../helpers/gradcheck.js';
import { spatialParityTests } from './spatial_fixture.js';

manualSeed(5);

describe('interpolate parity with torch_interpolate', () => {
  const fx = loadFixture('torch/torch_interpolate.io.safetensors');
  const tol = tolerance('torch', 'torch_interpolate');
  const x = get(fx, 'input');
  for (const mode of ['bilinear', 'bicubic'] as const) {
    for (const alignCorners of [false, true]) {
      test(`${mode} alignCorners=${alignCorners} to 11x9`, () => {
        const y = F.interpolate(x, { size: [11, 9], mode, alignCorners });
        assertClose(y, get(fx, `${mode}.align_${alignCorners}.to_11x9`), tol, `${mode} ${alignCorners}`);
      });
    }
  }
  test('nearest to 11x9', () => {
    assertClose(F.interpolate(x, { size: [11, 9] }), get(fx, 'nearest.to_11x9'), tol, 'nearest');
  });
  test('antialiased bilinear downsampling to 4x3', () => {
    const y = F.interpolate(x, { size: [4, 3], mode: 'bilinear', alignCorners: false, antialias: true });
    assertClose(y, get(fx, 'bilinear.antialias.to_4x3'), tol, 'antialias');
  });
});

describe('affineGrid + gridSample parity with torch_stn (output, grad input, grad theta)', () => {
  const fx = loadFixture('torch/torch_stn.io.safetensors');
  const tol = tolerance('torch', 'torch_stn');
  for (const alignCorners of [false, true]) {
    test(`alignCorners=${alignCorners}`, () => {
      const p = `align_corners_${alignCorners}`;
      const x = get(fx, `${p}.input`).cloneData().setRequiresGrad();
      const theta = get(fx, `${p}.theta`).cloneData().setRequiresGrad();
      const grid = F.affineGrid(theta, [2, 3, 7, 8], { alignCorners });
      assertClose(grid, get(fx, `${p}.grid`), tol, 'grid');
      const y = F.gridSample(x, grid, { mode: 'bilinear', paddingMode: 'zeros', alignCorners });
      assertClose(y, get(fx, `${p}.output`), tol, 'output');
      y.backward(get(fx, `${p}.upstream`));
      assertClose(x.grad as Tensor, get(fx, `${p}.grad.input`), tol, 'grad input');
      assertClose(theta.grad as Tensor, get(fx, `${p}.grad.theta`), tol, 'grad theta');
    });
  }
});

describe('resample parity with torch: every interpolate mode, scale factors, antialias, grid sample modes', () => {
  spatialParityTests(['interpolate', 'gridSample', 'affineGrid']);
});

/** Grid coordinates whose pixel positions sit mid-cell (fraction in [0.25, 0.75]), inside [0, size-1]. */
function midCellGrid(
  n: number,
  h: number,
  w: number,
  inH: number,
  inW: number,
  alignCorners: boolean,
): Tensor {
  const g = new Float32Array(n * h * w * 2);
  const toGrid = (pix: number, size: number) =>
    alignCorners ? (pix / (size - 1)) * 2 - 1 : ((pix + 0.5) / size) * 2 - 1;
  const r = rand([n * h * w * 2]).data;
  for (let i = 0; i < n * h * w; i++) {
    const px = Math.floor(r[2 * i] * (inW - 1.01)) + 0.25 + 0.5 * r[2 * i + 1];
    const py = Math.floor(r[2 * i + 1] * (inH - 1.01)) + 0.25 + 0.5 * r[2 * i];
    g[2 * i] = toGrid(Math.min(px, inW - 1.25), inW);
    g[2 * i + 1] = toGrid(Math.min(py, inH - 1.25), inH);
  }
  return tensor(g, [n, h, w, 2]);
}

describe('resample gradients (finite differences)', () => {
  const interp = (name: string, shape: number[], options: Parameters<typeof F.interpolate>[1]) =>
    test(`interpolate ${name}`, () =>
      gradcheck((x) => F.interpolate(x, options), [randn(shape)], { name: `interpolate ${name}` }));
  interp('nearest x2 size-1 dim', [1, 2, 1, 3], { scaleFactor: 2 });
  interp('nearest-exact down', [1, 2, 7, 5], { size: [3, 4], mode: 'nearest-exact' });
  interp('linear up odd', [2, 2, 5], { size: 9, mode: 'linear' });
  interp('bilinear alignCorners', [1, 2, 4, 5], { size: [7, 3], mode: 'bilinear', alignCorners: true });
  interp('bicubic scale 1.5', [1, 1, 5, 4], { scaleFactor: 1.5, mode: 'bicubic' });
  interp('bicubic antialias down', [1, 2, 9, 8], { size: [4, 3], mode: 'bicubic', antialias: true });
  interp('bilinear antialias down', [1, 2, 7, 9], { size: [3, 5], mode: 'bilinear', antialias: true });
  interp('trilinear', [1, 1, 3, 4, 2], { size: [4, 3, 5], mode: 'trilinear' });
  interp('area', [1, 2, 7, 5], { size: [3, 2], mode: 'area' });

  for (const paddingMode of ['zeros', 'border', 'reflection'] as const) {
    for (const alignCorners of [false, true]) {
      test(`gridSample bilinear ${paddingMode} alignCorners=${alignCorners}: input and grid`, () => {
        const grid = midCellGrid(2, 3, 4, 5, 6, alignCorners);
        gradcheck((x, g) => F.gridSample(x, g, { paddingMode, alignCorners }), [randn([2, 2, 5, 6]), grid], {
          eps: 1e-3,
          name: `gridSample ${paddingMode}`,
        });
      });
    }
  }
  test('gridSample nearest: input gradient (grid gradient is zero)', () => {
    const x = randn([1, 2, 4, 5]);
    const grid = midCellGrid(1, 3, 3, 4, 5, false);
    gradcheck((t) => F.gridSample(t, grid, { mode: 'nearest' }), [x], { name: 'gridSample nearest' });
    grid.setRequiresGrad();
    F.sum(F.gridSample(x, grid, { mode: 'nearest' })).backward();
    assert.ok((grid.grad as Tensor).data.every((v) => v === 0));
  });
  test('theta gradient through affineGrid and gridSample', () => {
    const theta = tensor([
      [
        [0.8, 0.1, 0.05],
        [-0.1, 0.9, 0.1],
      ],
    ]);
    gradcheck((x, t) => F.gridSample(x, F.affineGrid(t, [1, 2, 4, 5])), [randn([1, 2, 6, 7]), theta], {
      eps: 1e-3,
      name: 'affineGrid+gridSample',
    });
  });
  test('affineGrid 3-D is differentiable in theta', () => {
    gradcheck((t) => F.affineGrid(t, [2, 1, 2, 3, 4], { alignCorners: true }), [randn([2, 3, 4])], {
      name: 'affineGrid 3d',
    });
  });
});

describe('resample behaviour', () => {
  test('resizing to the same size is the identity (bilinear, bicubic, nearest)', () => {
    const x = randn([1, 2, 5, 6]);
    for (const mode of ['bilinear', 'bicubic', 'nearest'] as const) {
      assertClose(F.interpolate(x, { size: [5, 6], mode }), x, 1e-6, mode);
    }
  });
  test('antialiased downsampling keeps a constant image constant', () => {
    const y = F.interpolate(full([1, 1, 17, 13], 0.7), { size: [5, 4], mode: 'bicubic', antialias: true });
    assert.ok(y.data.every((v) => Math.abs(v - 0.7) < 1e-6));
  });
  test('the identity affine grid samples the input back (alignCorners false)', () => {
    const x = randn([2, 3, 5, 4]);
    const theta = tensor([1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0], [2, 2, 3]);
    assertClose(F.gridSample(x, F.affineGrid(theta, [2, 3, 5, 4])), x, 1e-5, 'identity');
  });
  test('a timm position-embedding resample: 14x14 -> 7x7 bicubic antialias', () => {
    const pos = randn([1, 8, 14, 14]);
    const y = F.interpolate(pos, { size: [7, 7], mode: 'bicubic', antialias: true, alignCorners: false });
    assert.deepEqual(y.shape, [1, 8, 7, 7]);
    // Antialiasing averages neighbourhoods, so the result is smoother than plain subsampling.
    const plain = F.interpolate(pos, { size: [7, 7], mode: 'bicubic' });
    assert.ok(F.std(y).item() < F.std(plain).item());
  });
});

describe('resample errors name the op and the shapes', () => {
  const x = randn([1, 2, 4, 4]);
  test('interpolate', () => {
    assert.throws(
      () => F.interpolate(x, { size: 3, mode: 'trilinear' }),
      /interpolate: mode 'trilinear' needs 3 spatial dims \(a 5-D input\), got \[1, 2, 4, 4\]/,
    );
    assert.throws(
      () => F.interpolate(x, { size: 3, scaleFactor: 2 }),
      /interpolate: give exactly one of size and scaleFactor/,
    );
    assert.throws(
      () => F.interpolate(x, { size: 3, alignCorners: true }),
      /interpolate: alignCorners only applies/,
    );
    assert.throws(
      () => F.interpolate(x, { size: 3, antialias: true }),
      /interpolate: antialias needs mode 'bilinear' or 'bicubic'/,
    );
    assert.throws(
      () => F.interpolate(x, { size: [3, 0] }),
      /interpolate: size \[3,0\] must be 2 positive ints/,
    );
  });
  test('gridSample and affineGrid', () => {
    assert.throws(
      () => F.gridSample(x, randn([2, 3, 3, 2])),
      /gridSample: grid must be \(1, Ho, Wo, 2\) for input \[1, 2, 4, 4\], got \[2, 3, 3, 2\]/,
    );
    assert.throws(
      () => F.affineGrid(randn([1, 3, 3]), [1, 2, 4, 4]),
      /affineGrid: theta must be \(1, 2, 3\) for size \[1, 2, 4, 4\], got \[1, 3, 3\]/,
    );
  });
});
