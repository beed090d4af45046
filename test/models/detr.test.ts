import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { manualSeed, noGrad, optim, randn, tensor } from '../../src/index.js';
import {
  DetrForObjectDetection,
  detrLoss,
  hungarianMatch,
  postProcessDetections,
  queryAttentionMaps,
  sinePositionEmbedding,
} from '../../src/models/detr.js';
import {
  detrConfigFromHf,
  detrConfigToHf,
  filterDetrCheckpoint,
  loadDetrStateDict,
  loadHfDetr,
} from '../../src/models/detr_checkpoint.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { assertClose } from '../helpers/assert.js';
import { fixturePath, get, loadFixture, tolerance } from '../helpers/fixtures.js';

manualSeed(3);

describe('DETR parity with Hugging Face (test/fixtures/peers/hf_detr)', () => {
  const io = loadFixture('peers/hf_detr.io.safetensors');
  const tol = tolerance('peers', 'hf_detr');
  const { model, report } = loadHfDetr(
    fixturePath('peers/hf_detr.safetensors'),
    fixturePath('peers/hf_detr.config.json'),
  );
  model.eval();
  const out = noGrad(() => model.forward(get(io, 'input')));
  const targets = [0, 1].map((i) => ({
    labels: get(io, `target.labels.${i}`),
    boxes: get(io, `target.boxes.${i}`),
  }));

  test('every tensor loads under its transformers-5 name', () => {
    assert.equal(report.source, 'transformers');
    assert.deepEqual(report.missing, []);
    assert.deepEqual(report.unexpected, []);
  });

  test('logits and pred_boxes', () => {
    assertClose(out.logits, get(io, 'output'), tol, 'logits');
    assertClose(out.predBoxes, get(io, 'pred_boxes'), tol, 'pred_boxes');
  });

  test('Hungarian-matched set loss and its parts (weights 1, 5, 2; eos 0.1)', () => {
    const r = noGrad(() => detrLoss(out, targets, model.config));
    assertClose([r.parts.loss_ce], get(io, 'loss_dict.loss_ce'), tol, 'loss_ce');
    assertClose([r.parts.loss_bbox], get(io, 'loss_dict.loss_bbox'), tol, 'loss_bbox');
    assertClose([r.parts.loss_giou], get(io, 'loss_dict.loss_giou'), tol, 'loss_giou');
    assertClose(
      [r.parts.cardinality_error],
      get(io, 'loss_dict.cardinality_error'),
      tol,
      'cardinality_error',
    );
    assertClose(r.loss, get(io, 'loss'), tol, 'loss');
  });
});
