/** evalEvery: evaluations after every k-th epoch and always after the last; a bad value is a one-line error. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { train } from '../../src/train/trainer.js';
import { tinyRunOptions } from './helpers/tiny.js';

describe('train evalEvery', () => {
  test('evaluates after epochs 2 and 3 of 3 with evalEvery 2', async () => {
    const { history } = await train(tinyRunOptions(null, { evalEvery: 2 }));
    assert.deepEqual(
      history.map((r) => r.eval_acc !== undefined),
      [false, true, true],
    );
  });

  test('rejects evalEvery 0 before training', async () => {
    await assert.rejects(
      train(tinyRunOptions(null, { evalEvery: 0 })),
      /train: evalEvery must be a positive integer, got 0/,
    );
  });
});
