import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { F, listBackends, manualSeed, nn, randn, tensor, withBackend } from '../../src/index.js';
import {
  composeThetas,
  identityParams,
  type LocalizationFeatures,
  MomentLocalization,
  MultiHeadSpatialTransformer,
  SeriesSpatialTransformer,
  SpatialTransformer,
  type StTransform,
  StnClassifier,
  thetaFromParams,
  tpsControlPoints,
  rotationEquivarianceLoss,
  turnMismatch,
  ClassTurnPrior,
  ClassTemplateAlignment,
  alignedOutput,
} from '../../src/models/stn.js';
import { noGrad } from '../../src/tensor/autograd.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { rectification } from '../../src/cli/commands/stn.js';
import { DistortedDataset } from '../../src/data/distorted_fashion_mnist.js';
import { readFashionMnistDir } from '../../src/data/fashion_mnist.js';
import { assertClose } from '../helpers/assert.js';
import { fixturePath, get, loadFixture, tolerance } from '../helpers/fixtures.js';
import { gradcheck } from '../helpers/gradcheck.js';

manualSeed(8);

const TRANSFORMS: StTransform[] = ['affine', 'attention', 'rts', 'tps'];
// 'rotation' has no torch fixture; it is 'rts' with scale 1 and no shift, checked against it below
const ALL_TRANSFORMS: StTransform[] = [...TRANSFORMS, 'rotation'];
// Every backend glimpse can have; a backend without its own grid-sample kernel runs js's for it.
const BACKENDS = ['js', 'native'];

/** Small random regression weights, so theta depends on the input and gradients reach the localization net. */
function perturbRegressor(st: SpatialTransformer, scale: number): void {
  noGrad(() => {
    const w = randn(st.fc_loc.weight.shape);
    for (let i = 0; i < w.size; i++) st.fc_loc.weight.data[i] = scale * w.data[i];
  });
}

describe('SpatialTransformer sampler parity with torch_stn on every backend', () => {
  const fx = loadFixture('torch/torch_stn.io.safetensors');
  const tol = tolerance('torch', 'torch_stn');
  for (const backend of BACKENDS) {
    for (const alignCorners of [false, true]) {
      const skip = listBackends().includes(backend) ? false : `backend '${backend}' is not registered here`;
      test(`${backend}, alignCorners=${alignCorners}: output, grad input, grad theta`, { skip }, () => {
        withBackend(backend, () => {
          const p = `align_corners_${alignCorners}`;
          const x = get(fx, `${p}.input`).cloneData().setRequiresGrad();
          const theta = get(fx, `${p}.theta`).cloneData().setRequiresGrad();
          const st = new SpatialTransformer({
            inChannels: 3,
            inputSize: [9, 11],
            outputSize: [7, 8],
            localization: 'mlp',
            alignCorners,
          });
          const { grid } = st.gridFromParams(F.reshape(theta, [2, 6]));
          assertClose(grid, get(fx, `${p}.grid`), tol, 'grid');
          const y = st.sample(x, grid);
          assertClose(y, get(fx, `${p}.output`), tol, 'output');
          y.backward(get(fx, `${p}.upstream`));
          assertClose(x.grad as Tensor, get(fx, `${p}.grad.input`), tol, 'grad input');
          assertClose(theta.grad as Tensor, get(fx, `${p}.grad.theta`), tol, 'grad theta');
        });
      });
    }
  }
});

describe('the whole ST layer (conv localization) against torch on every backend: output and every gradient', () => {
  // tools/stn_reference.py: the same layer in torch with random regressor weights, N=2, 1x20x18 -> 9x11
  const fx = loadFixture('stn/torch_st_layer.io.safetensors');
  for (const backend of BACKENDS) {
    const skip = listBackends().includes(backend) ? false : `backend '${backend}' is not registered here`;
    for (const transform of TRANSFORMS) {
      test(`${backend}, ${transform}`, { skip }, () => {
        withBackend(backend, () => {
          const st = new SpatialTransformer({
            inChannels: 1,
            inputSize: [20, 18],
            outputSize: [9, 11],
            transform,
            localization: 'conv',
            localizationOptions: { downsample: 2, channels: [4, 6], hidden: 8 },
            tpsGrid: 3,
          });
          const names = st.namedParameters().map(([name]) => name);
          st.loadStateDict(new Map(names.map((name) => [name, get(fx, `${transform}.${name}`)])));
          const x = get(fx, `${transform}.input`).cloneData().setRequiresGrad();
          const y = st.forward(x);
          assertClose(y, get(fx, `${transform}.output`), 1e-4, 'output');
          y.backward(get(fx, `${transform}.upstream`));
          assertClose(x.grad as Tensor, get(fx, `${transform}.grad.input`), 1e-4, 'grad input');
          for (const [name, p] of st.namedParameters()) {
            assertClose(p.grad as Tensor, get(fx, `${transform}.grad.${name}`), 1e-4, `grad ${name}`);
          }
        });
      });
    }
  }
});

describe('SpatialTransformer at init is the identity', () => {
  for (const transform of ALL_TRANSFORMS) {
    for (const alignCorners of [false, true]) {
      for (const localization of ['conv', 'mlp', 'moments'] as const) {
        test(`${transform}, ${localization} localization, alignCorners=${alignCorners}: output equals input`, () => {
          const st = new SpatialTransformer({
            inChannels: 2,
            inputSize: [12, 10],
            transform,
            localization,
            alignCorners,
          });
          const x = randn([3, 2, 12, 10]);
          const { output, params, theta, grid } = st.forwardWithTransform(x);
          assert.deepEqual(output.shape, [3, 2, 12, 10]);
          assert.deepEqual(params.shape, [3, st.numParams]);
          assert.deepEqual(grid.shape, [3, 12, 10, 2]);
          if (transform === 'tps') assert.equal(theta, null);
          else
            assertClose(
              theta as Tensor,
              tensor([1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0]),
              1e-6,
              'theta',
            );
          assertClose(output, x, 1e-5, 'output');
        });
      }
    }
  }

  test('a smaller outputSize at init is the whole input resampled (F.interpolate bilinear)', () => {
    const st = new SpatialTransformer({ inChannels: 1, inputSize: [16, 16], outputSize: 8 });
    const x = randn([2, 1, 16, 16]);
    const expected = F.interpolate(x, { size: [8, 8], mode: 'bilinear', alignCorners: false });
    assertClose(st.forward(x), expected, 1e-5, 'downsampled');
  });

  test('multi-head: K heads, outputs concatenated along channels, each the identity at init', () => {
    const mh = new MultiHeadSpatialTransformer(3, { inChannels: 2, inputSize: [10, 10], outputSize: [6, 5] });
    const x = randn([4, 2, 10, 10]);
    const { output, heads } = mh.forwardHeads(x);
    assert.equal(heads.length, 3);
    assert.deepEqual(output.shape, [4, 6, 6, 5]);
    for (let k = 0; k < 3; k++) {
      assertClose(F.slice(output, 1, 2 * k, 2 * k + 2), heads[k].output, 0, `head ${k} channels`);
      assert.deepEqual(heads[k].theta?.shape, [4, 2, 3]);
    }
    assert.equal(mh.numParameters(), 3 * mh.heads.at(0).numParameters());
    assert.ok(mh.stateDict().has('heads.1.fc_loc.weight'));
  });
});

describe('transform parameterizations', () => {
  test("'attention' (s, tx, ty) is a square crop: [[s, 0, tx], [0, s, ty]]", () => {
    const theta = thetaFromParams('attention', tensor([[0.5, 0.2, -0.3]]));
    assertClose(theta, tensor([0.5, 0, 0.2, 0, 0.5, -0.3]), 1e-7, 'theta');
  });

  test("'rts' (angle, s, tx, ty) is a scaled rotation plus a shift", () => {
    const a = Math.PI / 6;
    const theta = thetaFromParams('rts', tensor([[a, 2, 0.1, -0.4]]));
    const [c, s] = [2 * Math.cos(a), 2 * Math.sin(a)];
    assertClose(theta, tensor([c, -s, 0.1, s, c, -0.4]), 1e-6, 'theta');
  });

  test("'rotation' (angle) is 'rts' with scale 1 and no shift: a turn about the center", () => {
    const a = tensor([[0.4], [-1.1]]);
    const rts = F.cat(
      [
        a,
        tensor([
          [1, 0, 0],
          [1, 0, 0],
        ]),
      ],
      1,
    );
    assertClose(thetaFromParams('rotation', a), thetaFromParams('rts', rts), 1e-7, 'theta');
    assert.deepEqual([...identityParams('rotation')], [0]);
    const st = new SpatialTransformer({ inChannels: 1, inputSize: [8, 8], transform: 'rotation' });
    assert.equal(st.numParams, 1);
    // a quarter turn of a square image permutes its pixels
    const x = randn([1, 1, 8, 8]);
    const y = st.sample(x, st.gridFromParams(tensor([[Math.PI / 2]])).grid);
    assertClose(y, F.permute(F.flip(x, [3]), [0, 1, 3, 2]), 1e-5, 'quarter turn');
  });

  test("'tps' with targets that are an affine map of the control points samples that affine map", () => {
    const st = new SpatialTransformer({ inChannels: 1, inputSize: [9, 9], transform: 'tps', tpsGrid: 4 });
    const A = [0.8, -0.3, 0.1, 0.25, 0.9, -0.2];
    const control = tpsControlPoints(4);
    const targets = new Float32Array(control.length);
    for (let k = 0; k < control.length / 2; k++) {
      const [x, y] = [control[2 * k], control[2 * k + 1]];
      targets[2 * k] = A[0] * x + A[1] * y + A[2];
      targets[2 * k + 1] = A[3] * x + A[4] * y + A[5];
    }
    const { grid } = st.gridFromParams(tensor(targets, [1, 32]));
    const expected = F.affineGrid(tensor(A, [1, 2, 3]), [1, 1, 9, 9]);
    assertClose(grid, expected, 1e-5, 'grid');
  });

  test('a translation moves the content: attention with tx = 2/W shifts the image left by one pixel', () => {
    const st = new SpatialTransformer({ inChannels: 1, inputSize: [6, 8], transform: 'attention' });
    const x = randn([1, 1, 6, 8]);
    const { grid } = st.gridFromParams(tensor([[1, 2 / 8, 0]]));
    const y = st.sample(x, grid);
    assertClose(F.slice(y, 3, 0, 7), F.slice(x, 3, 1, 8), 1e-5, 'shifted');
    assertClose(F.slice(y, 3, 7, 8), tensor(new Float32Array(6), [1, 1, 6, 1]), 1e-6, 'zero padding');
  });

  test('identity parameters per transform', () => {
    assert.deepEqual([...identityParams('rts')], [0, 1, 0, 0]);
    assert.equal(identityParams('tps', 3).length, 18);
  });
});

/**
 * A smooth test image: bilinear sampling is piecewise polynomial, and on noise its derivative jumps
 * at every pixel crossing; on a smooth image the jumps are small.
 */
/** A small series ST-CNN as stn-demo builds it: attention (conv), then rotation (moments) on a 16x16 crop of 24x24. */
function attentionRotationSeries(): StnClassifier {
  return new StnClassifier({
    inputSize: [24, 24],
    heads: 1,
    stOutputSize: 16,
    stages: ['attention', 'rotation'],
    stageLocalization: ['conv', 'moments'],
  });
}

function smoothImage(n: number, c: number, h: number, w: number): Tensor {
  const phases = randn([n * c, 4]).data;
  const data = new Float32Array(n * c * h * w);
  for (let i = 0; i < n * c; i++) {
    const [a, b, p, q] = [phases[4 * i], phases[4 * i + 1], phases[4 * i + 2], phases[4 * i + 3]];
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        data[(i * h + y) * w + x] =
          Math.sin((1 + Math.abs(a)) * (x / w) * 3 + p) * Math.cos((1 + Math.abs(b)) * (y / h) * 3 + q);
      }
    }
  }
  return tensor(data, [n, c, h, w]);
}

/** A localization net with smooth activations (tanh), so finite differences see no kinks. */
class TanhLocalization extends nn.Module implements LocalizationFeatures {
  fc1: nn.Linear;
  fc2: nn.Linear;
  readonly outFeatures = 6;
  constructor(inFeatures: number) {
    super();
    this.fc1 = new nn.Linear(inFeatures, 8);
    this.fc2 = new nn.Linear(8, this.outFeatures);
  }
  forward(x: Tensor): Tensor {
    return F.tanh(this.fc2.forward(F.tanh(this.fc1.forward(F.flatten(x, 1)))));
  }
}

// An 8x8 input sampled to 4x4 puts the identity's sampling points mid-cell (pixel 2i + 0.5), and
// small regressor weights keep them inside their cells, where bilinear sampling is smooth. The
// built-in conv localization's max pooling has near-ties on smooth images, which finite differences
// straddle; its whole-layer gradients are compared with torch's above instead.
describe('gradients of the whole ST layer (finite differences)', () => {
  for (const transform of ALL_TRANSFORMS) {
    for (const localization of ['tanh', 'mlp'] as const) {
      test(`${transform}, ${localization} localization: w.r.t. every localization parameter, fc_loc and the input`, () => {
        manualSeed(4);
        const st = new SpatialTransformer({
          inChannels: 1,
          inputSize: [8, 8],
          outputSize: [4, 4],
          transform,
          localization: localization === 'tanh' ? new TanhLocalization(64) : 'mlp',
          localizationOptions: { hidden: 4, downsample: 1 },
        });
        perturbRegressor(st, 0.05);
        const x = smoothImage(1, 1, 8, 8);
        gradcheck((input) => st.forward(input), [x, ...st.parameters()], {
          eps: localization === 'tanh' ? 3e-3 : 1e-3,
          maxChecks: 40,
          name: `ST ${transform} ${localization}`,
        });
      });
    }
  }

  test("multi-head (mlp localizations): w.r.t. both heads' parameters and the input", () => {
    manualSeed(3);
    const mh = new MultiHeadSpatialTransformer(2, {
      inChannels: 1,
      inputSize: [8, 8],
      outputSize: [4, 4],
      transform: 'rts',
      localization: 'mlp',
      localizationOptions: { hidden: 4, downsample: 1 },
    });
    for (const head of mh.heads) perturbRegressor(head, 0.05);
    const x = smoothImage(2, 1, 8, 8);
    gradcheck((input) => mh.forward(input), [x, ...mh.parameters()], {
      eps: 1e-3,
      maxChecks: 30,
      name: 'MH-ST',
    });
  });

  test('sampling a separate source: gradients reach the source and the localization net', () => {
    manualSeed(5);
    const st = new SpatialTransformer({
      inChannels: 1,
      inputSize: [8, 8],
      outputSize: [4, 4],
      transform: 'affine',
      localization: new TanhLocalization(64),
    });
    perturbRegressor(st, 0.05);
    const x = smoothImage(1, 1, 8, 8);
    const source = smoothImage(1, 3, 16, 16);
    const out = st.forwardWithTransform(x, source).output;
    assert.deepEqual(out.shape, [1, 3, 4, 4]);
    gradcheck((a, b) => st.forwardWithTransform(a, b).output, [x, source, ...st.parameters()], {
      eps: 3e-3,
      maxChecks: 30,
      name: 'ST source',
    });
  });
});

describe("MomentLocalization ('moments', coordinate-aware)", () => {
  /** A positive elongated blob (2:1) turned by `angle` (radians, y down) around (cx, cy), pixel units. */
  function blob(h: number, w: number, angle: number, cx: number, cy: number): Float32Array {
    const out = new Float32Array(h * w);
    const [c, s] = [Math.cos(angle), Math.sin(angle)];
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const [dx, dy] = [x - cx, y - cy];
        const [u, v] = [c * dx + s * dy, -s * dx + c * dy];
        out[y * w + x] = Math.exp(-(u * u) / 18 - (v * v) / 4.5);
      }
    }
    return out;
  }

  /** Both convs pass their single channel through unchanged (center tap 1, bias 0). */
  function passThrough(loc: MomentLocalization): void {
    noGrad(() => {
      for (const conv of [loc.conv1, loc.conv2]) {
        conv.weight.data.fill(0);
        conv.weight.data[(conv.weight.size - 1) / 2] = 1;
        (conv.bias as Tensor).data.fill(0);
      }
    });
  }

  for (const weighting of ['relu', 'softmax'] as const) {
    test(`${weighting} weighting: mass, centroid and second central moments of the map, in normalized coordinates`, () => {
      const [h, w] = [16, 20];
      const loc = new MomentLocalization(1, [h, w], { channels: [1, 1], pool: 1, weighting });
      passThrough(loc);
      const img = blob(h, w, 0.5, 11.5, 6);
      const f = loc.moments(tensor(img, [1, 1, h, w])).data;
      assert.equal(f.length, 6);
      // expected, in float64
      const weights = Array.from(img, (v) => (weighting === 'relu' ? v : Math.exp(v)));
      const total = weights.reduce((a, v) => a + v, 0);
      const m = { x: 0, y: 0, xx: 0, yy: 0, xy: 0 };
      weights.forEach((v, i) => {
        const x = (2 * (i % w) + 1) / w - 1;
        const y = (2 * Math.floor(i / w) + 1) / h - 1;
        const p = v / (weighting === 'relu' ? total + 1e-3 * h * w : total);
        m.x += p * x;
        m.y += p * y;
        m.xx += p * x * x;
        m.yy += p * y * y;
        m.xy += p * x * y;
      });
      const mass = weighting === 'relu' ? total / (h * w) + 1e-3 : Math.log(total / (h * w));
      const expected = [
        mass,
        m.x,
        m.y,
        4 * (m.xx - m.x * m.x),
        4 * (m.yy - m.y * m.y),
        4 * (m.xy - m.x * m.y),
      ];
      assertClose(tensor(Float32Array.from(f)), tensor(Float32Array.from(expected)), 1e-4, 'moments');
    });
  }

  test("the second moments give the item's orientation (principal axis), wherever it is", () => {
    const n = 32;
    const loc = new MomentLocalization(1, [n, n], { channels: [1, 1], pool: 1 });
    passThrough(loc);
    for (const [angle, cx, cy] of [
      [0.6, 10, 20],
      [-0.9, 20, 12],
      [0.2, 16, 16],
    ]) {
      // bright, so the relu weighting's epsilon is negligible
      const img = blob(n, n, angle, cx, cy).map((v) => 100 * v);
      const f = loc.moments(tensor(img, [1, 1, n, n])).data;
      // square canvas: normalized coordinates are pixel coordinates times 2 / n
      assertClose(
        tensor([f[1], f[2]]),
        tensor([(2 * cx + 1) / n - 1, (2 * cy + 1) / n - 1]),
        2e-3,
        'centroid',
      );
      const axis = 0.5 * Math.atan2(2 * f[5], f[3] - f[4]);
      assert.ok(Math.abs(axis - angle) < 0.02, `axis ${axis} for angle ${angle}`);
    }
  });

  for (const weighting of ['relu', 'softmax'] as const) {
    test(`gradients of the whole ST layer with it (${weighting}): every localization parameter, fc_loc and the input`, () => {
      manualSeed(6);
      const st = new SpatialTransformer({
        inChannels: 1,
        inputSize: [8, 8],
        outputSize: [4, 4],
        transform: 'rts',
        localization: 'moments',
        localizationOptions: { channels: [3, 4], hidden: 4, pool: 1, weighting },
      });
      const loc = st.localization as MomentLocalization;
      assert.ok(loc instanceof MomentLocalization);
      // lifted biases keep every relu away from its kink, which finite differences would straddle
      noGrad(() => {
        for (const conv of [loc.conv1, loc.conv2]) (conv.bias as Tensor).data.fill(10);
      });
      perturbRegressor(st, 0.05);
      const x = smoothImage(2, 1, 8, 8);
      gradcheck((input) => st.forward(input), [x, ...st.parameters()], {
        eps: 1e-3,
        maxChecks: 40,
        name: `ST moments ${weighting}`,
      });
    });
  }

  test('sizes, the ST-CNN with it, errors', () => {
    const st = new SpatialTransformer({ inChannels: 1, inputSize: [42, 42], localization: 'moments' });
    const loc = st.localization as MomentLocalization;
    // conv5(1 -> 8), conv3(8 -> 16), fc(6 * 16 -> 32)
    assert.equal(loc.numParameters(), 8 * 25 + 8 + 16 * 72 + 16 + 96 * 32 + 32);
    assert.deepEqual(loc.moments(randn([2, 1, 42, 42])).shape, [2, 96]);
    const model = new StnClassifier({
      inputSize: [42, 42],
      heads: 1,
      transform: 'rts',
      stOutputSize: 28,
      localization: 'moments',
    });
    assert.deepEqual(model.forward(randn([2, 1, 42, 42])).shape, [2, 10]);
    assert.throws(
      () => new SpatialTransformer({ inChannels: 1, inputSize: [8, 8], localization: 'sift' as 'conv' }),
      /unknown localization 'sift'; use one of conv, mlp, moments/,
    );
    assert.throws(
      () => new MomentLocalization(1, [3, 3], { pool: 4 }),
      /MomentLocalization: input \[3, 3\] is too small for downsample 1 and pool 4/,
    );
  });
});

describe('SeriesSpatialTransformer (transformers in series)', () => {
  const stage = (inputSize: number, outputSize: number, transform: StTransform) =>
    new SpatialTransformer({
      inChannels: 1,
      inputSize: [inputSize, inputSize],
      outputSize,
      transform,
      localization: 'mlp',
      localizationOptions: { hidden: 4, downsample: 1 },
    });

  test('composeThetas: the composed grid is the inner grid mapped through the outer affine map', () => {
    const outer = randn([3, 2, 3]);
    const inner = randn([3, 2, 3]);
    const size = [3, 1, 5, 4];
    const composed = F.affineGrid(composeThetas(outer, inner), size);
    const g = F.affineGrid(inner, size).data;
    const o = outer.data;
    const expected = new Float32Array(g.length);
    for (let n = 0; n < 3; n++) {
      for (let p = 0; p < 20; p++) {
        const i = 2 * (n * 20 + p);
        const [x, y] = [g[i], g[i + 1]];
        expected[i] = o[6 * n] * x + o[6 * n + 1] * y + o[6 * n + 2];
        expected[i + 1] = o[6 * n + 3] * x + o[6 * n + 4] * y + o[6 * n + 5];
      }
    }
    assertClose(composed, tensor(expected, composed.shape), 1e-5, 'composed grid');
  });

  test('at init it is one resampling of the source (no double blur); stage 2 sees stage 1 output', () => {
    const series = new SeriesSpatialTransformer([stage(12, 8, 'attention'), stage(8, 6, 'rts')]);
    const x = randn([2, 1, 12, 12]);
    const out = series.forwardWithTransform(x);
    assert.deepEqual(out.output.shape, [2, 1, 6, 6]);
    assert.deepEqual(out.params.shape, [2, 3 + 4]);
    assertClose(out.output, F.interpolate(x, { size: [6, 6], mode: 'bilinear' }), 1e-5, 'identity');
    assertClose(out.stages[0].output, F.interpolate(x, { size: [8, 8], mode: 'bilinear' }), 1e-5, 'stage 1');
    assertClose(
      out.theta as Tensor,
      tensor(identityParams('affine'), [1, 2, 3]).expand([2, 2, 3]),
      0,
      'theta',
    );
  });

  test("a stage's transform acts on the previous stage's frame: zoom 0.5 then shift 1 = shift 0.5", () => {
    const series = new SeriesSpatialTransformer([stage(8, 8, 'attention'), stage(8, 8, 'attention')]);
    const [s1, s2] = series.stages.toArray();
    noGrad(() => {
      (s1.fc_loc.bias as Tensor).data.set([0.5, 0, 0]);
      (s2.fc_loc.bias as Tensor).data.set([1, 1, 0]);
    });
    const theta = series.forwardWithTransform(randn([1, 1, 8, 8])).theta as Tensor;
    assertClose(theta, tensor(Float32Array.of(0.5, 0, 0.5, 0, 0.5, 0), [1, 2, 3]), 1e-7, 'theta');
  });

  test('gradients (finite differences) w.r.t. both stages and the input', () => {
    manualSeed(6);
    const series = new SeriesSpatialTransformer([stage(8, 6, 'attention'), stage(6, 4, 'rts')]);
    for (const st of series.stages) perturbRegressor(st, 0.05);
    const x = smoothImage(1, 1, 8, 8);
    gradcheck((input) => series.forward(input), [x, ...series.parameters()], {
      eps: 1e-3,
      maxChecks: 30,
      name: 'series ST',
    });
  });

  test('errors: mismatched stage sizes, tps stages', () => {
    assert.throws(
      () => new SeriesSpatialTransformer([stage(12, 8, 'attention'), stage(10, 6, 'rts')]),
      /stage 2 takes \(1, \[10, 10\]\) but stage 1 outputs \(1, \[8, 8\]\)/,
    );
    assert.throws(
      () => new SeriesSpatialTransformer([stage(12, 8, 'attention'), stage(8, 6, 'tps')]),
      /stage 2 is 'tps'/,
    );
  });
});

describe('StnClassifier', () => {
  test('baseline, ST-CNN and 2xST-CNN give (N, classes) logits; parameter groups split localization from classifier', () => {
    const x = randn([2, 1, 42, 42]);
    for (const heads of [0, 1, 2]) {
      const model = new StnClassifier({ inputSize: [42, 42], heads, stOutputSize: 28 });
      assert.deepEqual(model.forward(x).shape, [2, 10]);
      assert.equal(model.transformers(x).length, heads);
      const { localization, classifier } = model.parameterGroups();
      assert.equal(localization.length + classifier.length, model.parameters().length);
      assert.equal(localization.length === 0, heads === 0);
      assert.equal(model.conv1.inChannels, Math.max(heads, 1));
    }
  });

  test('batch norm in the classifier: bn1/bn2 under torch names, eval uses running statistics', () => {
    const model = new StnClassifier({ inputSize: [16, 16], heads: 1, batchNorm: true });
    const keys = [...model.stateDict().keys()];
    for (const k of ['bn1.weight', 'bn1.running_mean', 'bn2.running_var', 'st.fc_loc.bias'])
      assert.ok(keys.includes(k), k);
    const x = randn([3, 1, 16, 16]);
    model.forward(x);
    model.eval();
    const a = model.forward(x);
    assertClose(model.forward(F.slice(x, 0, 0, 1)), F.slice(a, 0, 0, 1), 1e-5, 'eval is per-sample');
  });

  test("series ST-CNN (stages ['attention', 'rts']): logits, one composed transform, both stages learn", () => {
    const model = new StnClassifier({
      inputSize: [16, 16],
      heads: 1,
      stOutputSize: 12,
      stages: ['attention', 'rts'],
    });
    const series = model.st as SeriesSpatialTransformer;
    assert.ok(series instanceof SeriesSpatialTransformer);
    assert.deepEqual(
      series.stages.toArray().map((st) => [st.transform, ...st.inputSize]),
      [
        ['attention', 16, 16],
        ['rts', 12, 12],
      ],
    );
    const x = randn([4, 1, 16, 16]);
    const [t] = model.transformers(x);
    assert.deepEqual(t.theta?.shape, [4, 2, 3]);
    F.crossEntropy(model.forward(x), tensor([0, 1, 2, 3], [4], 'int64')).backward();
    for (const st of series.stages) {
      assert.ok(
        [...(st.fc_loc.weight.grad as Tensor).data].some((v) => v !== 0),
        `${st.transform}: no gradient`,
      );
    }
    assert.throws(
      () => new StnClassifier({ inputSize: [16, 16], heads: 2, stages: ['attention', 'rts'] }),
      /need heads = 1, got heads = 2/,
    );
    const mixed = new StnClassifier({
      inputSize: [16, 16],
      heads: 1,
      stOutputSize: 12,
      stages: ['attention', 'rts'],
      stageLocalization: ['conv', 'moments'],
    });
    assert.deepEqual(
      (mixed.st as SeriesSpatialTransformer).stages.toArray().map((st) => st.localization.constructor.name),
      ['ConvLocalization', 'MomentLocalization'],
    );
    assert.throws(
      () =>
        new StnClassifier({
          inputSize: [16, 16],
          heads: 1,
          stages: ['attention', 'rts'],
          stageLocalization: ['moments'],
        }),
      /stageLocalization names 1 nets for 2 stages \(attention, rts\); give one per stage/,
    );
  });

  test('the ST-CNN trains end to end: one step moves the localization regressor', () => {
    const model = new StnClassifier({ inputSize: [16, 16], heads: 1, stOutputSize: 12 });
    const x = randn([4, 1, 16, 16]);
    const loss = F.crossEntropy(model.forward(x), tensor([0, 1, 2, 3], [4], 'int64'));
    loss.backward();
    const st = model.st as SpatialTransformer;
    const g = st.fc_loc.weight.grad as Tensor;
    assert.ok(
      [...g.data].some((v) => v !== 0),
      'fc_loc received no gradient',
    );
  });

  test('errors name the shapes at fault', () => {
    const st = new SpatialTransformer({ inChannels: 1, inputSize: [10, 10] });
    assert.throws(
      () => st.forward(randn([1, 1, 12, 10])),
      /expected input \(N, 1, 10, 10\), got \[1, 1, 12, 10\]/,
    );
    assert.throws(
      () =>
        new SpatialTransformer({
          inChannels: 1,
          inputSize: [10, 10],
          transform: 'perspective' as StTransform,
        }),
      /unknown transform 'perspective'/,
    );
    assert.throws(() => thetaFromParams('rts', randn([2, 6])), /'rts' needs params \(N, 4\)/);
  });
});

describe('rectifying distorted Fashion-MNIST', () => {
  const base = readFashionMnistDir(fixturePath('fashion_mnist_slice'), 'test');
  const ds = new DistortedDataset(base, { seed: 4 });
  const indices = Array.from({ length: 40 }, (_, i) => i);
  /** theta = k R(angle) with translation c: the transform that undoes sample i's distortion. */
  const inverse = (i: number): Float32Array => {
    const d = ds.distortion(i);
    const a = (d.angle * Math.PI) / 180;
    const k = (d.scale * 28) / 42; // the item's half-size in normalized canvas units / its output half-size
    const [cx, cy] = [(2 * d.cx + 1) / 42 - 1, (2 * d.cy + 1) / 42 - 1];
    return Float32Array.of(k * Math.cos(a), -k * Math.sin(a), cx, k * Math.sin(a), k * Math.cos(a), cy);
  };

  test('the inverse transform samples the original upright item back (28x28 output)', () => {
    const st = new SpatialTransformer({ inChannels: 1, inputSize: [42, 42], outputSize: 28 });
    for (const i of [0, 7, 23]) {
      const x = tensor(ds.get(i).image.data, [1, 1, 42, 42]);
      const { grid } = st.gridFromParams(tensor(inverse(i), [1, 6]));
      const rectified = st.sample(x, grid).data;
      const item = base.get(i).image.data;
      let err = 0;
      let spread = 0;
      for (let p = 0; p < 784; p++) {
        err += Math.abs(rectified[p] - item[p]);
        spread += Math.abs(item[p] - item[783 - p]);
      }
      // two bilinear resamplings blur edges a little (0.02-0.05); the opposite angle gives 0.2-0.3
      assert.ok(err / 784 < 0.08, `item ${i}: mean |rectified - item| = ${err / 784}`);
      assert.ok(spread / 784 > 0.1, `item ${i} is too symmetric to tell`);
    }
  });

  test('rectification statistics: zero for the inverse transforms, the raw distortion for the identity', () => {
    const exact = rectification(indices.map(inverse), ds, indices);
    assert.ok(
      exact.angle.after < 1e-3 && exact.center.after < 1e-6 && exact.size.after < 1e-5,
      JSON.stringify(exact),
    );
    const identity = rectification(
      indices.map(() => Float32Array.of(1, 0, 0, 0, 1, 0)),
      ds,
      indices,
    );
    assert.ok(Math.abs(identity.angle.after - identity.angle.before) < 1e-9);
    assert.ok(Math.abs(identity.center.after - identity.center.before) < 1e-9);
    assert.ok(identity.angle.before > 20, `RMS of +-60 uniform angles: ${identity.angle.before}`);
    assert.ok(
      exact.angleSpread.after < 1e-3 &&
        Math.abs(identity.angleSpread.after - identity.angleSpread.before) < 1e-9,
    );
    // turning every item a further 90 degrees leaves them all alike (no spread) but not upright
    const turned = rectification(
      indices.map((i) => {
        const t = inverse(i);
        return Float32Array.of(-t[1], t[0], t[2], -t[4], t[3], t[5]);
      }),
      ds,
      indices,
    );
    assert.ok(
      Math.abs(turned.angle.after - 90) < 1e-3 && turned.angleSpread.after < 1e-3,
      JSON.stringify(turned.angle),
    );
    // per class: the same 90 degrees as the mean of every class present, with no spread around it
    turned.angleMeanByClass.forEach((m, c) => {
      if (Number.isNaN(m)) return;
      assert.ok(Math.abs(Math.abs(m) - 90) < 1e-3 && turned.angleSpreadByClass[c] < 1e-3, `class ${c}: ${m}`);
    });
  });
});

describe('rotation equivariance (self-supervised term)', () => {
  /** R(delta)^T theta, for one delta. */
  const turnBack = (theta: Tensor, delta: number): Tensor => {
    const [c, s] = [Math.cos(delta), Math.sin(delta)];
    return F.bmm(tensor(Float32Array.of(c, s, -s, c), [1, 2, 2]), theta);
  };
  const rts = (angle: number, scale: number, tx: number, ty: number) =>
    thetaFromParams('rts', tensor(Float32Array.of(angle, scale, tx, ty), [1, 4]));

  test("the turned copy sampled through R(delta)^T theta gives theta's output; turnMismatch is 0 there", () => {
    manualSeed(21);
    const x = smoothImage(1, 1, 48, 48);
    const delta = 0.5;
    const turned = F.gridSample(
      x,
      F.affineGrid(thetaFromParams('rotation', tensor([delta], [1, 1])), x.shape),
    );
    const theta = rts(0.4, 0.5, 0.1, -0.05);
    const out = F.gridSample(x, F.affineGrid(theta, [1, 1, 16, 16]));
    const back = F.gridSample(turned, F.affineGrid(turnBack(theta, delta), [1, 1, 16, 16]));
    let worst = 0;
    for (let i = 0; i < out.size; i++) worst = Math.max(worst, Math.abs(out.data[i] - back.data[i]));
    assert.ok(worst < 0.02, `outputs differ by ${worst}`);
    // the same theta turned the other way samples something else
    const wrong = F.gridSample(turned, F.affineGrid(turnBack(theta, -delta), [1, 1, 16, 16]));
    let far = 0;
    for (let i = 0; i < out.size; i++) far = Math.max(far, Math.abs(out.data[i] - wrong.data[i]));
    assert.ok(far > 0.2, `the wrong turn is as close: ${far}`);

    const d = tensor([delta], [1, 1]);
    assert.ok(turnMismatch(theta, turnBack(theta, delta), d).data[0] < 1e-6);
    // scale and shift do not matter, only the turn: 1 - cos(error)
    const scaled = rts(0.4 - delta + 0.3, 1.7, -0.4, 0.2);
    assertClose([turnMismatch(theta, scaled, d).data[0]], [1 - Math.cos(0.3)], 1e-5);
    assertClose([turnMismatch(theta, turnBack(theta, -delta), d).data[0]], [1 - Math.cos(2 * delta)], 1e-5);
  });

  test('turnMismatch gradients (finite differences) w.r.t. both thetas', () => {
    manualSeed(22);
    const a = randn([3, 2, 3]);
    const b = randn([3, 2, 3]);
    const delta = tensor(Float32Array.of(0.3, -0.7, 1.1), [3, 1]);
    gradcheck((p, q) => turnMismatch(p, q, delta), [a, b], { eps: 1e-3, name: 'turnMismatch' });
  });

  test('rotationEquivarianceLoss: a value in [0, 2], gradients to every localization net; errors', () => {
    manualSeed(23);
    const model = attentionRotationSeries();
    const series = model.st as SeriesSpatialTransformer;
    for (const st of series.stages) perturbRegressor(st, 0.05);
    const loss = rotationEquivarianceLoss(model, smoothImage(4, 1, 24, 24), { maxAngle: Math.PI / 3 });
    assert.deepEqual(loss.shape, []);
    assert.ok(loss.item() >= 0 && loss.item() <= 2, `loss ${loss.item()}`);
    loss.backward();
    for (const st of series.stages) {
      assert.ok(
        [...(st.fc_loc.weight.grad as Tensor).data].some((v) => v !== 0),
        `${st.transform}: no gradient`,
      );
    }
    // identity transforms (as at init) miss by the copy's own turn: the loss is the mean 1 - cos(delta)
    const fresh = new StnClassifier({ inputSize: [24, 24], heads: 1, stOutputSize: 16, transform: 'rts' });
    const idle = rotationEquivarianceLoss(fresh, smoothImage(64, 1, 24, 24), { maxAngle: Math.PI / 4 });
    // E[1 - cos(delta)] for delta uniform in [-pi/4, pi/4] is 1 - sin(pi/4) / (pi/4) = 0.0997
    assert.ok(Math.abs(idle.item() - 0.0997) < 0.03, `identity loss ${idle.item()}`);
    const cnn = new StnClassifier({ inputSize: [24, 24], heads: 0 });
    assert.throws(() => rotationEquivarianceLoss(cnn, randn([2, 1, 24, 24])), /one transformer or a series/);
    const two = new StnClassifier({ inputSize: [24, 24], heads: 2 });
    assert.throws(() => rotationEquivarianceLoss(two, randn([2, 1, 24, 24])), /not parallel heads/);
    assert.throws(
      () => rotationEquivarianceLoss(fresh, randn([2, 1, 24, 24]), { maxAngle: 0 }),
      /maxAngle must be in \(0, pi\]/,
    );
  });
});

/** A single 'rotation' ST turning every image by `turn` radians (zero regressor weights). */
function turningModel(turn: number): { model: StnClassifier; st: SpatialTransformer } {
  const model = new StnClassifier({
    inputSize: [16, 16],
    heads: 1,
    stOutputSize: 12,
    transform: 'rotation',
  });
  const st = model.st as SpatialTransformer;
  noGrad(() => {
    st.fc_loc.weight.data.fill(0);
    st.fc_loc.bias?.data.fill(turn);
  });
  return { model, st };
}

describe('ClassTurnPrior (each class turned zero on average)', () => {
  test('running mean turn per class; its gradient turns the offset class back, from any side; errors', () => {
    manualSeed(24);
    const { model, st } = turningModel(0.3);
    const turnAll = (a: number) => noGrad(() => st.fc_loc.bias?.data.fill(a));
    const prior = new ClassTurnPrior(3, { momentum: 0.5 });
    const x = randn([4, 1, 16, 16]);
    const labels = tensor([0, 0, 2, 2], [4], 'int64');
    const loss = prior.loss(model, x, labels);
    assertClose([...prior.meanTurns], [0.3, 0, 0.3], 1e-6);
    // mean_i phi a_i = 0.3 * 0.3
    assertClose([loss.item()], [0.09], 1e-5);
    loss.backward();
    // d/d bias of mean(phi a) = phi > 0: a gradient step lowers the turn
    const biasGrad = st.fc_loc.bias?.grad;
    assert.ok(biasGrad, 'no gradient on the regressor bias');
    assertClose([biasGrad.data[0]], [0.3], 1e-5);
    // the next batch of class 0 turned the other way cancels its running mean (momentum 0.5)
    turnAll(-0.3);
    prior.loss(model, x, tensor([0, 0, 0, 0], [4], 'int64'));
    assertClose([...prior.meanTurns], [0, 0, 0.3], 1e-6);
    // a class turned nearly upside down (160 degrees) is pushed back toward upright, not on to 180
    const flipped = new ClassTurnPrior(1);
    turnAll(2.8);
    st.fc_loc.bias?.zeroGrad();
    flipped.loss(model, x, tensor([0, 0, 0, 0], [4], 'int64')).backward();
    assertClose([(st.fc_loc.bias as Tensor).grad?.data[0] ?? Number.NaN], [2.8], 1e-4);
    assert.throws(() => prior.loss(model, x, tensor([0, 1, 3, 0], [4], 'int64')), /label 3 outside 0\.\.2/);
    assert.throws(() => prior.loss(model, x, tensor([0, 1], [2], 'int64')), /2 labels for 4 images/);
    assert.throws(() => new ClassTurnPrior(3, { momentum: 1 }), /momentum must be in \[0, 1\)/);
  });
});

describe('ClassTemplateAlignment (congealing per class)', () => {
  const meanSq = (a: Float32Array, b: Float32Array) =>
    a.reduce((s, v, j) => s + (v - b[j]) ** 2, 0) / a.length;

  test('running mean output per class; the loss is the squared distance to the template before the update', () => {
    manualSeed(25);
    const { model, st } = turningModel(0.1);
    const x = smoothImage(4, 1, 16, 16);
    const size = 12 * 12;
    const row = (t: Tensor, i: number) => t.data.slice(i * size, (i + 1) * size) as Float32Array;
    const avg = (a: Float32Array, b: Float32Array) => a.map((v, j) => (v + b[j]) / 2);
    const align = new ClassTemplateAlignment(3, { momentum: 0.5 });
    const out1 = noGrad(() => alignedOutput(model, x));
    // first sight of a class: its batch mean is the target
    const loss1 = align.loss(model, x, tensor([0, 0, 2, 2], [4], 'int64'));
    const t0 = avg(row(out1, 0), row(out1, 1));
    const t2 = avg(row(out1, 2), row(out1, 3));
    const expected1 =
      (meanSq(row(out1, 0), t0) +
        meanSq(row(out1, 1), t0) +
        meanSq(row(out1, 2), t2) +
        meanSq(row(out1, 3), t2)) /
      4;
    assertClose([loss1.item()], [expected1], 1e-5);
    assertClose([...align.template(0)], [...t0], 1e-6);
    assert.ok(
      align.template(1).every((v) => v === 0),
      'an unseen class has no template',
    );
    // next batch, turned the other way, all class 0: measured against the old template, then averaged in
    noGrad(() => st.fc_loc.bias?.data.fill(-0.1));
    const out2 = noGrad(() => alignedOutput(model, x));
    const loss2 = align.loss(model, x, tensor([0, 0, 0, 0], [4], 'int64'));
    assertClose([loss2.item()], [[0, 1, 2, 3].reduce((s, i) => s + meanSq(row(out2, i), t0), 0) / 4], 1e-5);
    const batchMean = [0, 1, 2, 3].reduce(
      (acc, i) => acc.map((v, j) => v + row(out2, i)[j] / 4),
      new Float32Array(size),
    );
    assertClose([...align.template(0)], [...t0.map((v, j) => 0.5 * v + 0.5 * batchMean[j])], 1e-5);
    assertClose([...align.template(2)], [...t2], 1e-6);
    assert.throws(() => align.loss(model, x, tensor([0, 1, 3, 0], [4], 'int64')), /label 3 outside 0\.\.2/);
    assert.throws(() => align.loss(model, x, tensor([0, 1], [2], 'int64')), /2 labels for 4 images/);
    assert.throws(() => new ClassTemplateAlignment(3, { momentum: 1 }), /momentum must be in \[0, 1\)/);
  });

  test('the gradient turns an output back toward its template', () => {
    manualSeed(26);
    const x = smoothImage(1, 1, 16, 16);
    const batch = F.cat([x, x, x, x], 0);
    const labels = tensor([1, 1, 1, 1], [4], 'int64');
    for (const turn of [0.25, -0.25]) {
      const { model, st } = turningModel(0);
      const align = new ClassTemplateAlignment(2);
      align.loss(model, batch, labels); // the template: the image itself, unturned
      noGrad(() => st.fc_loc.bias?.data.fill(turn));
      const loss = align.loss(model, batch, labels);
      assert.ok(loss.item() > 1e-4, `turned ${turn}: loss ${loss.item()}`);
      loss.backward();
      const g = (st.fc_loc.bias as Tensor).grad?.data[0] ?? Number.NaN;
      // a gradient step moves the turn toward 0
      assert.ok(Math.sign(g) === Math.sign(turn), `turn ${turn}: gradient ${g}`);
    }
  });

  test('in a series only the last stage samples differently: no gradient to the earlier stage through the crop', () => {
    manualSeed(27);
    const model = attentionRotationSeries();
    const [first, last] = (model.st as SeriesSpatialTransformer).stages.toArray();
    // the first stage depends on the input; the last one turns by a constant (so nothing reaches the
    // first stage through the last one's localization net either)
    perturbRegressor(first, 0.05);
    noGrad(() => last.fc_loc.bias?.data.fill(0.2));
    const x = smoothImage(4, 1, 24, 24);
    const labels = tensor([0, 0, 0, 0], [4], 'int64');
    const align = new ClassTemplateAlignment(1);
    align.loss(
      model,
      F.cat([x.slice(0, 0, 1), x.slice(0, 0, 1), x.slice(0, 0, 1), x.slice(0, 0, 1)], 0),
      labels,
    );
    const loss = align.loss(model, x, labels);
    loss.backward();
    const grads = (st: SpatialTransformer) => [
      ...(st.fc_loc.weight.grad?.data ?? []),
      ...(st.fc_loc.bias?.grad?.data ?? []),
    ];
    assert.ok(
      grads(last).some((v) => v !== 0),
      'the last stage gets a gradient',
    );
    assert.ok(
      grads(first).every((v) => v === 0),
      'the first stage gets none',
    );
    // the same difference on the series' own output does reach the first stage: the detach is what stops it
    model.zeroGrad();
    const out = model.transformers(x)[0].output;
    const direct = alignedOutput(model, x);
    assertClose([...noGrad(() => out).data], [...direct.data], 1e-5);
    F.mean(F.mul(out, out)).backward();
    assert.ok(
      grads(first).some((v) => v !== 0),
      'through the series output the first stage is reached',
    );
  });
});

describe('StnClassifier.transformedFor (a training step reuses the forward pass)', () => {
  test("the forward's transform for the same batch, with its graph; a new pass otherwise", () => {
    manualSeed(28);
    const model = attentionRotationSeries();
    for (const st of (model.st as SeriesSpatialTransformer).stages) perturbRegressor(st, 0.05);
    const x = smoothImage(3, 1, 24, 24);
    model.forward(x);
    const reused = model.transformedFor(x);
    assert.equal(reused, model.transformedFor(x), 'the same batch gets the cached output');
    const fresh = model.transformers(x)[0];
    assertClose([...(reused.theta as Tensor).data], [...(fresh.theta as Tensor).data], 1e-6);
    // its graph reaches the localization nets
    F.mean(reused.theta as Tensor).backward();
    const grads = (model.st as SeriesSpatialTransformer).stages.at(1).fc_loc.weight.grad;
    assert.ok(
      grads?.data.some((v) => v !== 0),
      'no gradient through the reused transform',
    );
    // another batch, or a forward without gradients, is not reused
    assert.notEqual(model.transformedFor(smoothImage(3, 1, 24, 24)), reused);
    noGrad(() => model.forward(x));
    assert.notEqual(model.transformedFor(x), reused);
  });
});
