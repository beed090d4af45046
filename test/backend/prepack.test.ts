// prepackForInference: linear weights packed once into the GEMM's panels (in place, or padded where
// out_features is not a multiple of the panel width) give the unpacked model's outputs on every
// instruction set and thread count, and every other use of the packed weights fails with a clear
// error instead of reading panels as a weight.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { withBackend } from '../../src/backend/backend.js';
import {
  nativeStatus,
  prepackForInference,
  setNativeIsa,
  setNativeThreads,
} from '../../src/backend/native.js';
import { manualSeed, noGrad, randn } from '../../src/index.js';
import { GELU } from '../../src/nn/layers.js';
import { Linear } from '../../src/nn/linear.js';
import { Sequential } from '../../src/nn/module.js';
import { assertClose } from '../helpers/assert.js';

const status = nativeStatus();
const skip = status.loaded ? false : `native addon not loaded: ${status.reason}`;

// Odd and panel-sized widths: 64 and 96 pack in place for every panel width, 45 and 5 are padded.
function makeModel(): Sequential {
  manualSeed(7);
  const fc1 = new Linear(37, 64);
  const fc2 = new Linear(64, 45, { bias: false });
  const fc3 = new Linear(45, 96);
  const head = new Linear(96, 5);
  return new Sequential([fc1, new GELU(), fc2, fc3, head]);
}

describe('prepackForInference', { skip }, () => {
  const defaults = { isa: status.isa ?? 'scalar', threads: status.threads ?? 1 };
  after(() => {
    if (!status.loaded) return;
    setNativeIsa(defaults.isa);
    setNativeThreads(defaults.threads);
  });

  for (const isa of status.isas ?? []) {
    for (const threads of [1, 3]) {
      test(`${isa}, ${threads} thread${threads > 1 ? 's' : ''}: outputs equal the unpacked model's and js's`, () => {
        setNativeIsa(isa);
        setNativeThreads(threads);
        for (const rows of [1, 13, 200]) {
          manualSeed(rows);
          const x = randn([rows, 37]);
          const model = makeModel();
          const expectedJs = withBackend('js', () => noGrad(() => model.forward(x)));
          const unpacked = noGrad(() => model.forward(x));
          prepackForInference(model);
          const packed = noGrad(() => model.forward(x));
          assertClose(packed, unpacked, 1e-6, `rows ${rows}: packed vs unpacked`);
          assertClose(packed, expectedJs, 1e-4, `rows ${rows}: packed vs js`);
          // Without noGrad too (the input does not require grad), and a second call reuses the panels.
          assertClose(model.forward(x), unpacked, 1e-6, `rows ${rows}: second call`);
        }
      });
    }
  }

  test('weights whose width fits the panels are packed in place, the others replaced', () => {
    setNativeIsa(defaults.isa);
    const model = makeModel();
    const [fc1, , fc2] = [...model] as Linear[];
    const [w1, w2] = [fc1.weight, fc2.weight];
    prepackForInference(model);
    assert.equal(fc1.weight, w1);
    assert.notEqual(fc2.weight, w2);
    assert.equal(fc1.weight.requiresGrad, false);
    assert.equal(fc2.weight.requiresGrad, false);
    assert.deepEqual(fc2.weight.shape, [45, 64]);
  });

  test('tied weights stay tied, and a second call is a no-op', () => {
    setNativeIsa(defaults.isa);
    manualSeed(3);
    const a = new Linear(20, 30);
    const b = new Linear(20, 30);
    b.weight = a.weight;
    const model = new Sequential([a, b]);
    const x = randn([4, 20]);
    const y0 = noGrad(() => b.forward(x));
    prepackForInference(model);
    prepackForInference(model);
    assert.equal(a.weight, b.weight);
    assertClose(
      noGrad(() => b.forward(x)),
      y0,
      1e-6,
      'tied',
    );
  });

  test('gradients, training, stateDict and another instruction set fail with a clear error', () => {
    setNativeIsa(defaults.isa);
    const model = prepackForInference(makeModel());
    const x = randn([3, 37]).setRequiresGrad();
    const y = model.forward(x);
    assert.throws(() => y.sum().backward(), /pre-packed for inference by prepackForInference/);
    assert.throws(() => model.stateDict(), /stateDict: the model was pre-packed for inference/);
    assert.throws(() => model.loadStateDict(new Map()), /loadStateDict: the model was pre-packed/);
    assert.throws(() => model.train(), /train: the model was pre-packed for inference/);
    model.eval();
    assert.equal(model.training, false);
    const other = (status.isas ?? []).find((i) => i !== defaults.isa);
    if (other) {
      setNativeIsa(other);
      assert.throws(() => noGrad(() => model.forward(randn([2, 37]))), /pre-packed for inference under the/);
      setNativeIsa(defaults.isa);
    }
    assert.throws(
      () => withBackend('js', () => prepackForInference(makeModel())),
      /prepackForInference: the active backend is 'js'/,
    );
  });
});
