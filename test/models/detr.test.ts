import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { main } from '../../src/cli/main.js';
import { FashionDetection, stackImages } from '../../src/data/fashion_detection.js';
import { locateFashionMnist, readFashionMnistDir } from '../../src/data/fashion_mnist.js';
import { manualSeed, noGrad, optim, randn, tensor } from '../../src/index.js';
import { readImage, writeImage } from '../../src/io/image.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
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
import { Tensor } from '../../src/tensor/tensor.js';
import { meanAveragePrecision } from '../../src/vision/average_precision.js';
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

/** A DETR small enough for tests: 32x32 inputs, a 4x4 map, 5 queries. */
const TINY = {
  numLabels: 3,
  numQueries: 5,
  dModel: 16,
  encoderLayers: 1,
  decoderLayers: 2,
  encoderAttentionHeads: 2,
  decoderAttentionHeads: 2,
  encoderFfnDim: 32,
  decoderFfnDim: 32,
  dropout: 0,
  numChannels: 1,
  backbone: { block: 'basic' as const, layers: [1, 1], channels: [4, 8], stemWidth: 4 },
  auxiliaryLoss: true,
};

const twoTargets = () => [
  {
    labels: [0, 2],
    boxes: tensor([
      [0.3, 0.3, 0.2, 0.2],
      [0.7, 0.6, 0.3, 0.4],
    ]),
  },
  { labels: [1], boxes: tensor([[0.5, 0.5, 0.5, 0.5]]) },
];

describe('DETR: shapes, auxiliary outputs, attention capture', () => {
  const model = new DetrForObjectDetection(TINY);
  const x = randn([2, 1, 32, 32]);

  test('logits (B, Q, C+1), boxes in (0, 1), one auxiliary prediction per earlier decoder layer', () => {
    const out = model.forward(x);
    assert.deepEqual(out.logits.shape, [2, 5, 4]);
    assert.deepEqual(out.predBoxes.shape, [2, 5, 4]);
    for (const v of out.predBoxes.data) assert.ok(v > 0 && v < 1);
    assert.equal(out.auxOutputs.length, 1);
    assert.deepEqual(out.featureSize, [4, 4]);
    model.eval();
    assert.equal(model.forward(x).auxOutputs.length, 0, 'no auxiliary outputs in eval');
    model.train();
  });

  test('captured cross-attention: (B, heads, Q, h*w) per decoder layer, rows sum to 1; per-query maps', () => {
    const out = noGrad(() => model.forward(x, { captureAttention: true }));
    const a = out.attentions;
    assert.ok(a);
    assert.equal(a.encoder.length, 1);
    assert.equal(a.decoderCross.length, 2);
    assert.deepEqual(a.decoderCross[1].shape, [2, 2, 5, 16]);
    assert.deepEqual(a.decoderSelf[0].shape, [2, 2, 5, 5]);
    const maps = queryAttentionMaps(a.decoderCross[1], out.featureSize);
    assert.deepEqual(maps.shape, [2, 5, 4, 4]);
    for (let r = 0; r < 10; r++) {
      const row = Array.from(maps.data.subarray(16 * r, 16 * (r + 1))).reduce((s, v) => s + Number(v), 0);
      assert.ok(Math.abs(row - 1) < 1e-5, `query map ${r} sums to ${row}`);
    }
  });

  test('a pixel mask removes padded cells from every key set', () => {
    const mask = tensor(new Float32Array(2 * 32 * 32).fill(1), [2, 32, 32]);
    for (let y = 0; y < 32; y++) for (let xx = 16; xx < 32; xx++) mask.data[32 * 32 + y * 32 + xx] = 0; // image 1: right half padding
    const out = noGrad(() => model.forward(x, { pixelMask: mask, captureAttention: true }));
    const cross = out.attentions?.decoderCross[0] as Tensor; // (2, 2, 5, 16) over a 4x4 map
    for (let h = 0; h < 2; h++) {
      for (let q = 0; q < 5; q++) {
        for (let cell = 0; cell < 16; cell++) {
          const v = cross.data[((1 * 2 + h) * 5 + q) * 16 + cell];
          if (cell % 4 >= 2) assert.equal(v, 0, 'padded cell attended');
        }
      }
    }
  });

  test('sine positions: y features first, sin/cos pairs, normalized to 2π at the last cell', () => {
    const pos = sinePositionEmbedding(null, 1, 2, 3, 8); // feats 4 per axis
    assert.deepEqual(pos.shape, [1, 6, 8]);
    const yLast = (2 / (2 + 1e-6)) * 2 * Math.PI; // row 2 of 2
    const xFirst = (1 / (3 + 1e-6)) * 2 * Math.PI; // column 1 of 3
    const cell = 3; // (y=1, x=0)
    const dim = (i: number) => 10000 ** ((2 * Math.floor(i / 2)) / 4);
    const expected = [
      Math.sin(yLast / dim(0)),
      Math.cos(yLast / dim(1)),
      Math.sin(yLast / dim(2)),
      Math.cos(yLast / dim(3)),
      Math.sin(xFirst / dim(0)),
      Math.cos(xFirst / dim(1)),
      Math.sin(xFirst / dim(2)),
      Math.cos(xFirst / dim(3)),
    ];
    assertClose(pos.data.subarray(8 * cell, 8 * cell + 8), expected, 1e-5, 'cell (1, 0)');
  });
});

describe('DETR: matching and set loss', () => {
  test('the matcher pairs each target with the query that predicts it', () => {
    const logits = tensor(new Float32Array(1 * 3 * 3), [1, 3, 3]); // 2 classes + no-object
    logits.data.set([0, 0, 5, 5, 0, 0, 0, 5, 0]); // q0 no-object, q1 class 0, q2 class 1
    const predBoxes = tensor([
      [
        [0.5, 0.5, 0.1, 0.1],
        [0.2, 0.2, 0.2, 0.2],
        [0.8, 0.8, 0.2, 0.2],
      ],
    ]);
    const targets = [
      {
        labels: [1, 0],
        boxes: tensor([
          [0.8, 0.8, 0.2, 0.2],
          [0.2, 0.2, 0.2, 0.2],
        ]),
      },
    ];
    const m = hungarianMatch({ logits, predBoxes }, targets, { classCost: 1, bboxCost: 5, giouCost: 2 });
    assert.deepEqual(m, [{ queries: [1, 2], targets: [1, 0] }]);
  });

  test('an image without objects: every query is no-object, no box loss, gradients still flow', () => {
    const model = new DetrForObjectDetection(TINY);
    const out = model.forward(randn([1, 1, 32, 32]));
    const r = detrLoss(out, [{ labels: [], boxes: tensor(new Float32Array(0), [0, 4]) }], model.config);
    assert.equal(r.parts.loss_bbox, 0);
    assert.equal(r.parts.loss_giou, 0);
    assert.ok(r.parts.loss_ce > 0 && r.parts.loss_ce_0 > 0);
    assert.deepEqual(r.indices, [{ queries: [], targets: [] }]);
    r.loss.backward();
    assert.ok(model.class_labels_classifier.weight.grad);
  });

  test('a few optimizer steps on a fixed batch reduce the set loss (with auxiliary losses)', () => {
    manualSeed(21);
    const model = new DetrForObjectDetection(TINY);
    const x = randn([2, 1, 32, 32]);
    const opt = new optim.AdamW(model.parameters(), { lr: 5e-3, weightDecay: 0 });
    const losses: number[] = [];
    for (let i = 0; i < 10; i++) {
      const r = detrLoss(model.forward(x), twoTargets(), model.config);
      assert.ok('loss_giou_0' in r.parts, 'auxiliary parts are reported');
      losses.push(r.loss.item());
      opt.zeroGrad();
      r.loss.backward();
      opt.step();
    }
    assert.ok(losses[9] < 0.95 * losses[0], `loss ${losses[0]} → ${losses[9]}`);
  });

  test('post-processing: boxes in pixels, an image may have no detections', () => {
    const logits = tensor([
      [
        [4, 0, 0],
        [0, 0, 4],
      ],
    ]); // q0 class 0 (p ≈ 0.96), q1 no-object
    const predBoxes = tensor([
      [
        [0.5, 0.25, 0.5, 0.5],
        [0.5, 0.5, 1, 1],
      ],
    ]);
    const [found] = postProcessDetections({ logits, predBoxes }, { threshold: 0.5, targetSizes: [[40, 80]] });
    assert.equal(found.length, 1);
    assert.equal(found[0].label, 0);
    assert.equal(found[0].query, 0);
    assertClose(found[0].box, [20, 0, 60, 20], 1e-5, 'box');
    assert.deepEqual(postProcessDetections({ logits, predBoxes }, { threshold: 0.99 }), [[]]);
  });
});

describe('DETR: bad input', () => {
  const model = new DetrForObjectDetection(TINY);
  const out = noGrad(() => model.forward(randn([1, 1, 32, 32])));
  test('targets with negative size, unknown classes, wrong counts', () => {
    assert.throws(
      () => detrLoss(out, [{ labels: [0], boxes: tensor([[0.5, 0.5, -0.1, 0.2]]) }], model.config),
      /targets\[0\]\.boxes\[0\] = \[0\.5, 0\.5, -0\.1, 0\.2\] has a negative or non-finite size/,
    );
    assert.throws(
      () => detrLoss(out, [{ labels: [3], boxes: tensor([[0.5, 0.5, 0.1, 0.2]]) }], model.config),
      /labels\[0\] = 3 is not a class id in \[0, 3\)/,
    );
    assert.throws(() => detrLoss(out, [], model.config), /0 targets for a batch of 1/);
    assert.throws(
      () => detrLoss(out, [{ labels: [0, 1], boxes: tensor([[0.5, 0.5, 0.1, 0.2]]) }], model.config),
      /2 labels and boxes/,
    );
  });

  test('images of the wrong shape, unknown config keys', () => {
    assert.throws(
      () => model.forward(randn([1, 3, 32, 32])),
      /expected a float32 image batch \(B, 1, H, W\)/,
    );
    assert.throws(
      () => new DetrForObjectDetection({ ...TINY, numQueriez: 3 } as never),
      /unknown config option 'numQueriez'/,
    );
  });

  test('a checkpoint with another number of classes: clear error, or a re-initialized class head on request', () => {
    const five = new DetrForObjectDetection({ ...TINY, numLabels: 5 });
    const sd = five.stateDict();
    const three = new DetrForObjectDetection(TINY);
    assert.throws(
      () => loadDetrStateDict(three, sd),
      /detects 5 classes \(\+ no-object\) but the model 3.*reinitializeClassHead/,
    );
    const before = three.class_labels_classifier.weight.data.slice();
    const report = loadDetrStateDict(three, sd, { reinitializeClassHead: true });
    assert.deepEqual(report.reinitialized.sort(), [
      'class_labels_classifier.bias',
      'class_labels_classifier.weight',
    ]);
    assert.deepEqual([...three.class_labels_classifier.weight.data], [...before], 'class head kept');
    assertClose(
      three.bbox_predictor.layers.at(0).weight,
      five.bbox_predictor.layers.at(0).weight,
      0,
      'box head loaded',
    );
  });

  test('another architecture is a shape error naming the tensor', () => {
    const wide = new DetrForObjectDetection({ ...TINY, dModel: 32 });
    assert.throws(
      () => loadDetrStateDict(new DetrForObjectDetection(TINY), wide.stateDict()),
      /tensors have other shapes \(.*: checkpoint \[/,
    );
  });
});

/** The model's own (transformers 5) names rewritten the facebookresearch/detr way. */
function toOriginalNames(sd: Map<string, Tensor>): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  const packed = new Map<string, Tensor[]>();
  for (const [k, t] of sd) {
    const attn =
      /^model\.(encoder|decoder)\.layers\.(\d+)\.(self_attn|encoder_attn)\.([qkv])_proj\.(weight|bias)$/.exec(
        k,
      );
    if (attn) {
      const name = attn[3] === 'self_attn' ? 'self_attn' : 'multihead_attn';
      const key = `transformer.${attn[1]}.layers.${attn[2]}.${name}.in_proj_${attn[5]}`;
      const parts = packed.get(key) ?? [];
      parts['qkv'.indexOf(attn[4])] = t;
      packed.set(key, parts);
      continue;
    }
    const decoder = k.includes('decoder');
    const renamed = k
      .replace(/^model\.backbone\.model\./, 'backbone.0.body.')
      .replace(/^model\.input_projection\./, 'input_proj.')
      .replace(/^model\.query_position_embeddings\./, 'query_embed.')
      .replace(/^class_labels_classifier\./, 'class_embed.')
      .replace(/^bbox_predictor\./, 'bbox_embed.')
      .replace(/^model\.decoder\.layernorm\./, 'transformer.decoder.norm.')
      .replace(/^model\.(encoder|decoder)\.layers\./, 'transformer.$1.layers.')
      .replace('.encoder_attn.o_proj.', '.multihead_attn.out_proj.')
      .replace('.self_attn.o_proj.', '.self_attn.out_proj.')
      .replace('.mlp.fc1.', '.linear1.')
      .replace('.mlp.fc2.', '.linear2.')
      .replace('.self_attn_layer_norm.', '.norm1.')
      .replace('.encoder_attn_layer_norm.', '.norm2.')
      .replace('.final_layer_norm.', decoder ? '.norm3.' : '.norm2.');
    out.set(renamed, t);
  }
  for (const [k, parts] of packed) {
    const data = new Float32Array(parts.reduce((s, p) => s + p.size, 0));
    let o = 0;
    for (const p of parts) {
      data.set(p.data as Float32Array, o);
      o += p.size;
    }
    out.set(k, new Tensor(data, [3 * parts[0].shape[0], ...parts[0].shape.slice(1)]));
  }
  return out;
}

describe('DETR checkpoints: other layouts and configs', () => {
  const source = new DetrForObjectDetection(TINY).eval();
  const x = randn([1, 1, 32, 32]);
  const expected = noGrad(() => source.forward(x));

  test('facebookresearch/detr names (packed in_proj, linear1, norm1..3, backbone.0.body)', () => {
    const original = toOriginalNames(source.stateDict());
    assert.ok(original.has('transformer.encoder.layers.0.self_attn.in_proj_weight'));
    assert.equal(filterDetrCheckpoint(original).source, 'facebookresearch');
    const target = new DetrForObjectDetection(TINY).eval();
    const report = loadDetrStateDict(target, original);
    assert.deepEqual(report.missing, []);
    assertClose(noGrad(() => target.forward(x)).logits, expected.logits, 1e-6, 'logits');
  });

  test('transformers 4 names (conv_encoder, out_proj, fc1) with a stray num_batches_tracked', () => {
    const v4 = new Map(
      [...source.stateDict()].map(([k, t]) => [
        k
          .replace('model.backbone.model.', 'model.backbone.conv_encoder.model.')
          .replace('.o_proj.', '.out_proj.')
          .replace('.mlp.fc', '.fc'),
        t,
      ]),
    );
    v4.set('model.backbone.conv_encoder.model.bn1.num_batches_tracked', tensor([0], undefined, 'int64'));
    assert.equal(filterDetrCheckpoint(v4).source, 'transformers-4');
    const target = new DetrForObjectDetection(TINY).eval();
    loadDetrStateDict(target, v4);
    assertClose(noGrad(() => target.forward(x)).predBoxes, expected.predBoxes, 1e-6, 'boxes');
  });

  test('config.json round trip, and the fixture config reads as the fixture model', () => {
    const cfg = detrConfigFromHf(detrConfigToHf({ ...source.config, labels: ['a', 'b', 'c'] }));
    assert.deepEqual(cfg, {
      ...source.config,
      backbone: { ...source.config.backbone, outStage: 2 },
      labels: ['a', 'b', 'c'],
    });
    const hf = detrConfigFromHf(fixturePath('peers/hf_detr.config.json'));
    assert.deepEqual(hf.backbone, {
      block: 'bottleneck',
      layers: [1, 1, 1, 1],
      channels: [4, 8, 16, 32],
      stemWidth: 16,
      outStage: 4,
    });
    assert.equal(hf.numLabels, 5);
    assert.throws(
      () => detrConfigFromHf({ model_type: 'detr', position_embedding_type: 'learned' }),
      /learned.*not supported/,
    );
    assert.throws(() => detrConfigFromHf({ model_type: 'vit' }), /not 'detr'/);
  });
});

describe('glimpse detect', () => {
  const dir = mkdtempSync(join(tmpdir(), 'glimpse-detect-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const weights = join(dir, 'model', 'model.safetensors');
  const image = join(dir, 'canvas.png');

  before(async () => {
    manualSeed(8);
    const model = new DetrForObjectDetection({ ...TINY, labels: ['shirt', 'shoe', 'bag'] });
    // A bias towards class 1 makes every query a confident detection.
    model.class_labels_classifier.bias?.data.set([0, 8, 0, 0]);
    mkdirSync(join(dir, 'model'));
    writeSafetensors(weights, model.stateDict());
    writeFileSync(join(dir, 'model', 'config.json'), JSON.stringify(detrConfigToHf(model.config)));
    writeFileSync(
      join(dir, 'model', 'preprocessor_config.json'),
      JSON.stringify({ do_resize: false, do_normalize: false }),
    );
    await writeImage(image, randn([3, 32, 40]).abs().mul(0.3));
  });

  /** Runs the CLI in-process capturing stderr; stdout stays with node:test, which reports through it. */
  async function glimpse(args: string[]): Promise<{ code: number; err: string }> {
    let err = '';
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => {
      err += s;
      return true;
    }) as typeof process.stderr.write;
    try {
      return { code: await main(args), err };
    } finally {
      process.stderr.write = write;
    }
  }

  test('writes the figure, one attention overlay per detection and the JSON', async () => {
    const outDir = join(dir, 'out');
    const r = await glimpse([
      'detect',
      image,
      '--model',
      'detr',
      '--weights',
      weights,
      '--out',
      outDir,
      '--threshold',
      '0.5',
    ]);
    assert.equal(r.code, 0, r.err);
    const report = JSON.parse(readFileSync(join(outDir, 'detections.json'), 'utf8'));
    assert.equal(report.detections.length, 5);
    assert.deepEqual(report.featureSize, [4, 5]);
    for (const d of report.detections) {
      assert.equal(d.label, 'shoe');
      assert.ok(existsSync(join(outDir, `attention_q${d.query}.png`)));
      assert.ok(d.box[2] >= d.box[0] && d.box[2] <= 40.001 && d.box[3] <= 32.001, 'box in image pixels');
    }
    const figure = await readImage(join(outDir, 'detections.png'));
    assert.ok(figure.shape[2] > 5 * 40, 'one panel per detection next to the image');
  });

  test('no detections above the threshold is not an error', async () => {
    const outDir = join(dir, 'none');
    const r = await glimpse([
      'detect',
      image,
      '--weights',
      weights,
      '--out',
      outDir,
      '--threshold',
      '0.9999',
    ]);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(JSON.parse(readFileSync(join(outDir, 'detections.json'), 'utf8')).detections, []);
  });

  test('errors: another model id, a missing config, a bad threshold', async () => {
    assert.match(
      (await glimpse(['detect', image, '--model', 'vit', '--weights', weights, '--out', dir])).err,
      /--model 'vit' is not a detector/,
    );
    const lonely = join(dir, 'lonely.safetensors');
    writeFileSync(lonely, readFileSync(weights));
    assert.match(
      (await glimpse(['detect', image, '--weights', lonely, '--out', dir])).err,
      /no config\.json next to/,
    );
    assert.match(
      (await glimpse(['detect', image, '--weights', weights, '--out', dir, '-t', '2'])).err,
      /--threshold must be a probability/,
    );
  });
});

describe('the DETR trained on Fashion-MNIST detection (docs/detection/model)', () => {
  const dir = locateFashionMnist('test');
  test('AP50 >= 0.6 on the first 300 canvases of its test split', {
    skip: dir
      ? false
      : 'Fashion-MNIST test files not found (install dataset-fashion-mnist or set GLIMPSE_DATA)',
  }, () => {
    const model = join(import.meta.dirname, '..', '..', 'docs', 'detection', 'model');
    const { model: detr } = loadHfDetr(join(model, 'model.safetensors'), join(model, 'config.json'));
    detr.eval();
    // scripts/train_detr.ts with --seed 0 renders its test split with seed 2.
    const test = new FashionDetection(readFashionMnistDir(dir as string, 'test'), { length: 300, seed: 2 });
    const samples = Array.from({ length: 300 }, (_, i) => test.get(i));
    const out = noGrad(() => detr.forward(stackImages(samples)));
    const found = postProcessDetections(out, {
      threshold: 0.001,
      targetSizes: samples.map(() => [64, 64] as [number, number]),
    });
    const r = meanAveragePrecision(
      found,
      samples.map((s) => ({ boxes: s.boxes, labels: s.labels })),
    );
    assert.ok(r.map50 >= 0.6, `AP50 ${r.map50}`);
  });
});
