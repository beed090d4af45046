/**
 * The region proposal network of Faster R-CNN (Ren et al.) with torchvision's names and behaviour:
 * a head (3x3 conv + ReLU, then 1x1 convs for one objectness logit and four box deltas per anchor),
 * anchors from an AnchorGenerator, proposal selection (pre-NMS top-k per level, decode, clip to the
 * image, drop tiny boxes, score threshold, NMS per level, post-NMS top-k), and in training the
 * anchor targets (IoU matching with foreground/background thresholds, every ground truth keeping
 * its best anchors), balanced sampling of positives and negatives, and the loss: binary
 * cross-entropy on objectness plus smooth-L1 (beta 1/9) on the deltas of positive anchors.
 */
import { Conv2d } from '../nn/conv.js';
import { normal_, zeros_ } from '../nn/init.js';
import { ReLU } from '../nn/layers.js';
import { Module, Sequential, type StateDict } from '../nn/module.js';
import { Generator } from '../ops/creation.js';
import { div } from '../ops/elementwise.js';
import { binaryCrossEntropyWithLogits, smoothL1Loss } from '../ops/loss.js';
import { cat, indexSelect, permute, reshape } from '../ops/shape.js';
import { noGrad } from '../tensor/autograd.js';
import { fmt } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import {
  type AnchorGenerator,
  BoxCoder,
  batchedNms,
  boxIou,
  checkXyxyBoxes,
  clipBoxesToImage,
  removeSmallBoxes,
} from '../vision/boxes.js';

/** torchvision's RPNHead: conv (conv.0.0 + ReLU) → cls_logits (A) and bbox_pred (4A) per level. */
export class RPNHead extends Module {
  conv: Sequential;
  cls_logits: Conv2d;
  bbox_pred: Conv2d;

  constructor(
    readonly inChannels: number,
    readonly numAnchors: number,
    convDepth = 1,
  ) {
    super();
    this.conv = new Sequential(
      Array.from(
        { length: convDepth },
        () => new Sequential([new Conv2d(inChannels, inChannels, 3, { padding: 1 }), new ReLU()]),
      ),
    );
    this.cls_logits = new Conv2d(inChannels, numAnchors, 1);
    this.bbox_pred = new Conv2d(inChannels, 4 * numAnchors, 1);
    for (const [, m] of this.namedModules()) {
      if (m instanceof Conv2d) {
        normal_(m.weight, 0, 0.01);
        if (m.bias) zeros_(m.bias);
      }
    }
  }

  /** Per level (B, C, h, w) → objectness (B, A, h, w) and deltas (B, 4A, h, w). */
  forward(features: readonly Tensor[]): { objectness: Tensor[]; bboxDeltas: Tensor[] } {
    const objectness: Tensor[] = [];
    const bboxDeltas: Tensor[] = [];
    for (const f of features) {
      if (f.ndim !== 4 || f.shape[1] !== this.inChannels) {
        throw new Error(`RPNHead: expected (B, ${this.inChannels}, h, w) features, got ${fmt(f.shape)}`);
      }
      const t = this.conv.forward(f);
      objectness.push(this.cls_logits.forward(t));
      bboxDeltas.push(this.bbox_pred.forward(t));
    }
    return { objectness, bboxDeltas };
  }
}

/** Older torchvision (< 0.13) named the head's conv `conv.weight`; newer `conv.0.0.weight`. */
export function filterRpnHeadCheckpoint(sd: StateDict): StateDict {
  return new Map(
    [...sd].map(([k, v]) => [k.replace(/^((?:.*\.)?)conv\.(weight|bias)$/, '$1conv.0.0.$2'), v]),
  );
}

/** (B, A*C, h, w) → (B, h*w*A, C): torchvision's permute_and_flatten (anchor order y, x, a). */
function flattenLevel(t: Tensor, c: number): Tensor {
  const [B, AC, h, w] = t.shape;
  const a = AC / c;
  return reshape(permute(reshape(t, [B, a, c, h, w]), [0, 3, 4, 1, 2]), [B, h * w * a, c]);
}

export interface RpnOptions {
  fgIouThresh?: number;
  bgIouThresh?: number;
  /** Anchors sampled per image for the loss. */
  batchSizePerImage?: number;
  positiveFraction?: number;
  preNmsTopN?: { training: number; testing: number };
  postNmsTopN?: { training: number; testing: number };
  nmsThresh?: number;
  scoreThresh?: number;
  minSize?: number;
  /** Seed of the positive/negative sampler (torchvision draws from torch's global generator). */
  seed?: number;
}

export interface RpnTarget {
  /** (T, 4) xyxy ground-truth boxes in image pixels; T may be 0. */
  boxes: Tensor;
}

export interface RpnOutput {
  /** Per image (K, 4) xyxy proposals, by decreasing objectness. */
  proposals: Tensor[];
  /** Per image (K,) objectness probabilities. */
  scores: Tensor[];
  /** With targets: the two losses (and anchor targets for inspection). */
  losses: { lossObjectness: Tensor; lossRpnBoxReg: Tensor } | null;
}

export interface AnchorTargets {
  /** Per anchor: 1 foreground, 0 background, -1 ignored. */
  labels: Float32Array;
  /** (A, 4) the matched ground-truth box of every anchor (box 0 for unmatched ones). */
  matchedBoxes: Tensor;
}

/**
 * torchvision's RegionProposalNetwork. forward(features, imageSize) in eval returns proposals; in
 * training with targets it also returns the losses.
 */
export class RegionProposalNetwork extends Module {
  head: RPNHead;
  readonly anchorGenerator: AnchorGenerator;
  readonly boxCoder = new BoxCoder([1, 1, 1, 1]);
  readonly options: Required<RpnOptions>;
  private readonly sampler: Generator;

  constructor(anchorGenerator: AnchorGenerator, head: RPNHead, options: RpnOptions = {}) {
    super();
    this.anchorGenerator = anchorGenerator;
    this.head = head;
    this.options = {
      fgIouThresh: 0.7,
      bgIouThresh: 0.3,
      batchSizePerImage: 256,
      positiveFraction: 0.5,
      preNmsTopN: { training: 2000, testing: 1000 },
      postNmsTopN: { training: 2000, testing: 1000 },
      nmsThresh: 0.7,
      scoreThresh: 0,
      minSize: 1e-3,
      seed: 0,
      ...options,
    };
    if (!(this.options.bgIouThresh <= this.options.fgIouThresh)) {
      throw new Error(
        `RegionProposalNetwork: bgIouThresh ${this.options.bgIouThresh} must not exceed fgIouThresh ${this.options.fgIouThresh}`,
      );
    }
    const perLocation = anchorGenerator.numAnchorsPerLocation();
    if (perLocation.some((n) => n !== head.numAnchors)) {
      throw new Error(
        `RegionProposalNetwork: the head predicts ${head.numAnchors} anchors per location but the generator makes [${perLocation}]`,
      );
    }
    this.sampler = new Generator(this.options.seed);
  }

  /**
   * features: per level (B, C, h, w); imageSize: (H, W) of the batch tensor (sets the anchor
   * strides); imageSizes: each image's own (H, W) for clipping (default imageSize).
   */
  forward(
    features: readonly Tensor[],
    imageSize: readonly [number, number],
    options: { imageSizes?: ReadonlyArray<readonly [number, number]>; targets?: readonly RpnTarget[] } = {},
  ): RpnOutput {
    const B = features[0].shape[0];
    const imageSizes = options.imageSizes ?? Array.from({ length: B }, () => imageSize);
    const { objectness, bboxDeltas } = this.head.forward(features);
    const anchors = this.anchorGenerator.gridAnchors(
      imageSize,
      features.map((f) => [f.shape[2], f.shape[3]] as [number, number]),
    ); // (N, 4), the same for every image
    const perLevel = objectness.map((o) => o.shape[1] * o.shape[2] * o.shape[3]);
    const logits = cat(
      objectness.map((o) => flattenLevel(o, 1)),
      1,
    ); // (B, N, 1)
    const deltas = cat(
      bboxDeltas.map((d) => flattenLevel(d, 4)),
      1,
    ); // (B, N, 4)
    const N = anchors.shape[0];
    const allAnchors = noGrad(() =>
      cat(
        Array.from({ length: B }, () => anchors),
        0,
      ),
    );
    const decoded = noGrad(() => this.boxCoder.decode(reshape(deltas.detach(), [B * N, 4]), allAnchors));
    const { proposals, scores } = this.filterProposals(decoded, logits.detach(), imageSizes, perLevel);
    let losses: RpnOutput['losses'] = null;
    if (options.targets) {
      if (options.targets.length !== B) {
        throw new Error(
          `RegionProposalNetwork: ${options.targets.length} targets for ${B} images; give one per image (empty ones too)`,
        );
      }
      losses = this.computeLoss(anchors, logits, deltas, options.targets);
    }
    return { proposals, scores, losses };
  }

  private filterProposals(
    decoded: Tensor,
    logits: Tensor,
    imageSizes: ReadonlyArray<readonly [number, number]>,
    perLevel: number[],
  ): { proposals: Tensor[]; scores: Tensor[] } {
    return noGrad(() => {
      const mode = this.training ? 'training' : 'testing';
      const preNms = this.options.preNmsTopN[mode];
      const postNms = this.options.postNmsTopN[mode];
      const B = imageSizes.length;
      const N = logits.shape[1];
      const proposals: Tensor[] = [];
      const scores: Tensor[] = [];
      for (let b = 0; b < B; b++) {
        const picked: number[] = [];
        const levels: number[] = [];
        let offset = 0;
        perLevel.forEach((n, level) => {
          const idx = Array.from({ length: n }, (_, i) => offset + i);
          idx.sort((i, j) => logits.data[b * N + j] - logits.data[b * N + i] || i - j);
          for (const i of idx.slice(0, Math.min(preNms, n))) {
            picked.push(i);
            levels.push(level);
          }
          offset += n;
        });
        const rows = new Tensor(
          Float64Array.from(picked, (i) => b * N + i),
          [picked.length],
        );
        let boxes = clipBoxesToImage(indexSelect(decoded, 0, rows), imageSizes[b]);
        let prob = new Tensor(
          Float32Array.from(picked, (i) => 1 / (1 + Math.exp(-logits.data[b * N + i]))),
          [picked.length],
        );
        let lvl = new Tensor(Float64Array.from(levels), [levels.length]);
        const keepRows = (keep: Tensor) => {
          boxes = indexSelect(boxes, 0, keep);
          prob = indexSelect(prob, 0, keep);
          lvl = indexSelect(lvl, 0, keep);
        };
        keepRows(removeSmallBoxes(boxes, this.options.minSize));
        const aboveThresh: number[] = [];
        for (let i = 0; i < prob.size; i++) if (prob.data[i] >= this.options.scoreThresh) aboveThresh.push(i);
        keepRows(new Tensor(Float64Array.from(aboveThresh), [aboveThresh.length]));
        const keep = batchedNms(boxes, prob, lvl, this.options.nmsThresh);
        keepRows(new Tensor(keep.data.slice(0, postNms), [Math.min(postNms, keep.size)]));
        proposals.push(boxes);
        scores.push(prob);
      }
      return { proposals, scores };
    });
  }

  /**
   * torchvision's anchor matching: each anchor takes the ground truth it overlaps most; IoU >=
   * fgIouThresh is foreground, < bgIouThresh background, in between ignored; and every ground truth
   * also claims the anchors of its highest IoU (allow_low_quality_matches), so no object goes unmatched.
   */
  assignTargets(anchors: Tensor, gtBoxes: Tensor): AnchorTargets {
    const N = anchors.shape[0];
    const labels = new Float32Array(N);
    const matched = new Float32Array(4 * N);
    const T = gtBoxes.shape[0];
    if (T === 0) return { labels, matchedBoxes: new Tensor(matched, [N, 4]) };
    const iou = noGrad(() => boxIou(gtBoxes, anchors)).data; // (T, N)
    const best = new Float32Array(T).fill(-1);
    for (let t = 0; t < T; t++) for (let a = 0; a < N; a++) best[t] = Math.max(best[t], iou[t * N + a]);
    const { fgIouThresh, bgIouThresh } = this.options;
    for (let a = 0; a < N; a++) {
      let top = 0;
      for (let t = 1; t < T; t++) if (iou[t * N + a] > iou[top * N + a]) top = t;
      const v = iou[top * N + a];
      let label = v >= fgIouThresh ? 1 : v < bgIouThresh ? 0 : -1;
      for (let t = 0; t < T; t++) if (iou[t * N + a] === best[t]) label = 1;
      labels[a] = label;
      matched.set(gtBoxes.data.subarray(4 * top, 4 * top + 4), 4 * a);
    }
    return { labels, matchedBoxes: new Tensor(matched, [N, 4]) };
  }

  /** BalancedPositiveNegativeSampler: up to batchSizePerImage * positiveFraction positives, negatives fill the rest. */
  sampleAnchors(labels: Float32Array): { positive: number[]; negative: number[] } {
    const pos: number[] = [];
    const neg: number[] = [];
    labels.forEach((l, i) => {
      if (l >= 1) pos.push(i);
      else if (l === 0) neg.push(i);
    });
    const { batchSizePerImage, positiveFraction } = this.options;
    const numPos = Math.min(pos.length, Math.floor(batchSizePerImage * positiveFraction));
    const numNeg = Math.min(neg.length, batchSizePerImage - numPos);
    const pick = (from: number[], n: number) => {
      const a = [...from];
      for (let i = 0; i < n; i++) {
        const j = i + Math.floor(this.sampler.next() * (a.length - i));
        [a[i], a[j]] = [a[j], a[i]];
      }
      return a.slice(0, n).sort((x, y) => x - y);
    };
    return { positive: pick(pos, numPos), negative: pick(neg, numNeg) };
  }

  private computeLoss(
    anchors: Tensor,
    logits: Tensor,
    deltas: Tensor,
    targets: readonly RpnTarget[],
  ): { lossObjectness: Tensor; lossRpnBoxReg: Tensor } {
    const [B, N] = logits.shape;
    const posRows: number[] = [];
    const sampledRows: number[] = [];
    const sampledLabels: number[] = [];
    const regression: Tensor[] = [];
    targets.forEach((t, b) => {
      if (t.boxes.ndim !== 2 || t.boxes.shape[1] !== 4) {
        throw new Error(
          `RegionProposalNetwork: targets[${b}].boxes must be (T, 4) xyxy, got ${fmt(t.boxes.shape)}`,
        );
      }
      checkXyxyBoxes(t.boxes, 'RegionProposalNetwork', `targets[${b}].boxes`);
      const { labels, matchedBoxes } = this.assignTargets(anchors, t.boxes);
      const { positive, negative } = this.sampleAnchors(labels);
      if (positive.length > 0) {
        const idx = new Tensor(Float64Array.from(positive), [positive.length]);
        regression.push(
          noGrad(() => this.boxCoder.encode(indexSelect(matchedBoxes, 0, idx), indexSelect(anchors, 0, idx))),
        );
      }
      for (const i of positive) posRows.push(b * N + i);
      for (const i of [...positive, ...negative]) {
        sampledRows.push(b * N + i);
        sampledLabels.push(labels[i]);
      }
    });
    const flatLogits = reshape(logits, [B * N]);
    const sampled = new Tensor(Float64Array.from(sampledRows), [sampledRows.length]);
    const lossObjectness = binaryCrossEntropyWithLogits(
      indexSelect(flatLogits, 0, sampled),
      new Tensor(Float32Array.from(sampledLabels), [sampledLabels.length]),
    );
    const flatDeltas = reshape(deltas, [B * N, 4]);
    const lossRpnBoxReg =
      posRows.length === 0
        ? new Tensor(new Float32Array(1), [])
        : div(
            smoothL1Loss(
              indexSelect(flatDeltas, 0, new Tensor(Float64Array.from(posRows), [posRows.length])),
              cat(regression, 0),
              { beta: 1 / 9, reduction: 'sum' },
            ),
            Math.max(1, sampledRows.length),
          );
    return { lossObjectness, lossRpnBoxReg };
  }
}
