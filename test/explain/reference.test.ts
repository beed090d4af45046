/**
 * Explainers on the attention maps timm produced (peers/timm_vit: 3 layers, 4 heads, 65 tokens = class
 * + 8 x 8 patches of 4 px; peers/timm_deit_distilled: 2 layers, 3 heads, 66 tokens) against values
 * computed independently from the papers' definitions by tools/rollout_reference.py (numpy; flow by
 * networkx's Edmonds-Karp, checked there against a linear program), frozen in explain/reference.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { attentionFlow, attentionRollout, meanAttentionDistance, type Tensor } from '../../src/index.js';
import { assertClose } from '../helpers/assert.js';
import { get, loadFixture, tolerance } from '../helpers/fixtures.js';

const ref = loadFixture('explain/reference.safetensors');
const tol = tolerance('peers', 'timm_vit');

function attentionsOf(name: string): Tensor[] {
  const io = loadFixture(`peers/${name}.io.safetensors`);
  return [...io.keys()]
    .filter((k) => k.startsWith('attn.'))
    .sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]))
    .map((k) => get(io, k));
}

const vit = attentionsOf('timm_vit');
const deit = attentionsOf('timm_deit_distilled');

describe('explainers on timm attention vs the independent reference', () => {
  test('fixture layout: 3 layers of (2, 4, 65, 65)', () => {
    assert.equal(vit.length, 3);
    for (const a of vit) assert.deepEqual(a.shape, [2, 4, 65, 65]);
  });

  test('rollout matrix and class-token map (mean fusion)', () => {
    const r = attentionRollout(vit, { headFusion: 'mean', discardRatio: 0, prefixTokens: 1 });
    assertClose(r.matrix, get(ref, 'vit.rollout.matrix'), tol, 'matrix');
    assertClose(r.map, get(ref, 'vit.rollout.map'), tol, 'map');
    assert.deepEqual(r.map.shape, [2, 8, 8]);
  });

  test('rollout with max fusion and 0.9 discard, and with min fusion', () => {
    const max = attentionRollout(vit, { headFusion: 'max', discardRatio: 0.9, prefixTokens: 1 });
    assertClose(max.map, get(ref, 'vit.rollout_max_d09.map'), tol, 'max, discard 0.9');
    const min = attentionRollout(vit, { headFusion: 'min', prefixTokens: 1 });
    assertClose(min.map, get(ref, 'vit.rollout_min.map'), tol, 'min');
  });

  test('DeiT distilled: maps from the class and the distillation token', () => {
    const r = attentionRollout(deit, { prefixTokens: 2, tokenIndex: [0, 1] });
    assertClose(r.maps, get(ref, 'deit.rollout.maps'), tol, 'class + distillation maps');
  });

  test('mean attention distance per layer and head (pixels)', () => {
    const vitMad = meanAttentionDistance(vit, { gridSize: [8, 8], patchSize: 4, prefixTokens: 1 });
    assertClose(vitMad.flat(), get(ref, 'vit.mad'), tol, 'vit');
    assert.equal(vitMad.length, 3);
    assert.equal(vitMad[0].length, 4);
    const deitMad = meanAttentionDistance(deit, { gridSize: [8, 8], patchSize: 4, prefixTokens: 2 });
    assertClose(deitMad.flat(), get(ref, 'deit.mad'), tol, 'deit');
  });

  test('attention flow to the class token equals networkx max-flow', () => {
    const f = attentionFlow(vit, { prefixTokens: 1 });
    assert.deepEqual(f.flow.shape, [2, 1, 65]);
    assertClose(f.flow, get(ref, 'vit.flow'), tol, 'flow');
  });
});
