import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { F, manualSeed, noGrad, optim, randn, tensor } from '../../src/index.js';
import { filterRpnHeadCheckpoint, RegionProposalNetwork, RPNHead } from '../../src/models/rpn.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { AnchorGenerator } from '../../src/vision/boxes.js';
import { assertClose } from '../helpers/assert.js';
import { fixturePath, get, loadFixture, tolerance } from '../helpers/fixtures.js';

manualSeed(5);

function fixtureRpn(): RegionProposalNetwork {
  const head = new RPNHead(8, 6);
  head.loadStateDict(readSafetensors(fixturePath('torch/torchvision_rpn.safetensors')).tensors);
  const anchors = new AnchorGenerator({ sizes: [[16, 32]], aspectRatios: [[0.5, 1, 2]] });
  return new RegionProposalNetwork(anchors, head, {
    fgIouThresh: 0.7,
    bgIouThresh: 0.3,
    batchSizePerImage: 64,
    positiveFraction: 0.5,
    preNmsTopN: { training: 200, testing: 100 },
    postNmsTopN: { training: 50, testing: 20 },
    nmsThresh: 0.7,
  }).eval();
}

describe('RPN parity with torchvision (test/fixtures/torch/torchvision_rpn)', () => {
  const io = loadFixture('torch/torchvision_rpn.io.safetensors');
  const tol = tolerance('torch', 'torchvision_rpn');
  const rpn = fixtureRpn();
  const feature = get(io, 'feature');
  const size = [...get(io, 'image_size').data] as [number, number];

  test('anchors of a 64x80 image over an 8x10 map', () => {
    assertClose(rpn.anchorGenerator.gridAnchors(size, [[8, 10]]), get(io, 'anchors'), 0, 'anchors');
  });

  test('head objectness and box deltas (conv.0.0 / cls_logits / bbox_pred names)', () => {
    const { objectness, bboxDeltas } = noGrad(() => rpn.head.forward([feature]));
    assertClose(objectness[0], get(io, 'objectness'), tol, 'objectness');
    assertClose(bboxDeltas[0], get(io, 'bbox_deltas'), tol, 'bbox_deltas');
  });

  test('final proposals in eval: top-100 pre-NMS, NMS 0.7, top-20 post-NMS', () => {
    const out = noGrad(() => rpn.forward([feature], size));
    assertClose(out.proposals[0], get(io, 'proposals'), tol, 'proposals');
    const s = out.scores[0].data;
    for (let i = 1; i < s.length; i++) assert.ok(s[i] <= s[i - 1], 'scores decrease');
  });

  test('old torchvision names (conv.weight) load through the filter', () => {
    const sd = readSafetensors(fixturePath('torch/torchvision_rpn.safetensors')).tensors;
    const old = new Map([...sd].map(([k, v]) => [k.replace('conv.0.0.', 'conv.'), v]));
    const head = new RPNHead(8, 6);
    head.loadStateDict(filterRpnHeadCheckpoint(old));
    const loaded = head.stateDict().get('conv.0.0.weight');
    const stored = sd.get('conv.0.0.weight');
    assert.ok(loaded && stored);
    assertClose(loaded, stored, 0, 'conv.0.0.weight');
  });
});

describe('RPN training targets and loss', () => {
  const anchors = tensor([
    [0, 0, 10, 10], // IoU 1 with gt 0: foreground
    [1, 0, 11, 10], // IoU 0.818: foreground
    [5, 0, 15, 10], // IoU 1/3: ignored (between 0.3 and 0.7)
    [40, 40, 50, 50], // IoU 0: background
    [20, 20, 40, 40], // best anchor of gt 1 (IoU 0.25): foreground by the low-quality rule
  ]);
  const gt = tensor([
    [0, 0, 10, 10],
    [25, 25, 35, 35],
  ]);
  const rpn = new RegionProposalNetwork(
    new AnchorGenerator({ sizes: [[8]], aspectRatios: [[1]] }),
    new RPNHead(4, 1),
    {
      batchSizePerImage: 4,
      positiveFraction: 0.5,
    },
  );

  test('foreground / background / ignored, and every ground truth keeps its best anchor', () => {
    const { labels, matchedBoxes } = rpn.assignTargets(anchors, gt);
    assert.deepEqual([...labels], [1, 1, -1, 0, 1]);
    assertClose(matchedBoxes.data.subarray(16, 20), [25, 25, 35, 35], 0, 'low-quality match keeps its gt');
    const empty = rpn.assignTargets(anchors, tensor(new Float32Array(0), [0, 4]));
    assert.deepEqual([...empty.labels], [0, 0, 0, 0, 0]);
  });

  test('balanced sampling: at most batch * fraction positives, negatives fill up', () => {
    const labels = Float32Array.from([1, 1, 1, 0, 0, 0, 0, -1]);
    const { positive, negative } = rpn.sampleAnchors(labels);
    assert.equal(positive.length, 2);
    assert.equal(negative.length, 2);
    for (const i of positive) assert.equal(labels[i], 1);
    for (const i of negative) assert.equal(labels[i], 0);
    const few = rpn.sampleAnchors(Float32Array.from([1, 0, 0, 0, 0, 0]));
    assert.deepEqual([few.positive.length, few.negative.length], [1, 3]);
  });

  test('a few optimizer steps reduce both losses; empty targets give a zero box loss', () => {
    const head = new RPNHead(8, 3);
    const net = new RegionProposalNetwork(
      new AnchorGenerator({ sizes: [[16]], aspectRatios: [[0.5, 1, 2]] }),
      head,
      {
        batchSizePerImage: 32,
        seed: 1,
      },
    );
    const feats = randn([2, 8, 6, 6]);
    const targets = [
      {
        boxes: tensor([
          [8, 8, 28, 24],
          [30, 10, 44, 40],
        ]),
      },
      { boxes: tensor([[2, 20, 20, 44]]) },
    ];
    const opt = new optim.Adam(head.parameters(), { lr: 0.01 });
    const losses: number[] = [];
    for (let i = 0; i < 15; i++) {
      const l = net.forward([feats], [48, 48], { targets }).losses;
      assert.ok(l);
      const total = F.add(l.lossObjectness, l.lossRpnBoxReg);
      losses.push(total.item());
      opt.zeroGrad();
      total.backward();
      opt.step();
    }
    assert.ok(losses[14] < 0.7 * losses[0], `loss ${losses[0]} → ${losses[14]}`);
    const none = net.forward([feats], [48, 48], {
      targets: [
        { boxes: tensor(new Float32Array(0), [0, 4]) },
        { boxes: tensor(new Float32Array(0), [0, 4]) },
      ],
    });
    assert.equal(none.losses?.lossRpnBoxReg.item(), 0);
    assert.ok((none.losses?.lossObjectness.item() ?? 0) > 0);
  });
});

describe('RPN proposal selection over two feature levels', () => {
  test('top-k before NMS per level, NMS within a level only, top-k after', () => {
    const gen = new AnchorGenerator({ sizes: [[16], [32]], aspectRatios: [[1], [1]] });
    const net = new RegionProposalNetwork(gen, new RPNHead(4, 1), {
      preNmsTopN: { training: 3, testing: 3 },
      postNmsTopN: { training: 4, testing: 4 },
      nmsThresh: 0.5,
    }).eval();
    const features = [randn([1, 4, 8, 8]), randn([1, 4, 4, 4])];
    const out = noGrad(() => net.forward(features, [64, 64]));
    const { objectness } = noGrad(() => net.head.forward(features));
    // the 3 best logits of each level, as probabilities
    const top = objectness.map((o) =>
      [...o.data]
        .sort((a, b) => b - a)
        .slice(0, 3)
        .map((v) => 1 / (1 + Math.exp(-v))),
    );
    const scores = [...out.scores[0].data];
    assert.ok(scores.length <= 4 && scores.length >= 2, `${scores.length} proposals`);
    for (const s of scores)
      assert.ok(
        top.flat().some((t) => Math.abs(t - s) < 1e-6),
        `score ${s} is a per-level top-3`,
      );
    // The best proposal of each level survives: NMS never compares boxes across levels.
    for (const level of top) assert.ok(scores.some((s) => Math.abs(s - level[0]) < 1e-6));
  });
});

describe('RPN: bad input', () => {
  test('clear errors', () => {
    const net = new RegionProposalNetwork(
      new AnchorGenerator({ sizes: [[16]], aspectRatios: [[1]] }),
      new RPNHead(4, 1),
    );
    const f = randn([1, 4, 4, 4]);
    assert.throws(
      () => net.forward([f], [32, 32], { targets: [{ boxes: tensor([[10, 10, 5, 20]]) }] }),
      /targets\[0\]\.boxes\[0\].*x2 >= x1/,
    );
    assert.throws(() => net.forward([f], [32, 32], { targets: [] }), /0 targets for 1 images/);
    assert.throws(() => net.forward([randn([1, 3, 4, 4])], [32, 32]), /RPNHead: expected \(B, 4, h, w\)/);
    assert.throws(
      () =>
        new RegionProposalNetwork(
          new AnchorGenerator({ sizes: [[16, 32]], aspectRatios: [[1]] }),
          new RPNHead(4, 1),
        ),
      /1 anchors per location but the generator makes \[2\]/,
    );
  });
});
