/**
 * A tiny classifier and a short training run on the committed Fashion-MNIST slice, shared by the
 * trainer tests and the child process the resume test kills.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readFashionMnistDir } from '../../../src/data/fashion_mnist.js';
import { compose, randomCrop, randomHorizontalFlip } from '../../../src/data/transforms.js';
import { Module } from '../../../src/nn/module.js';
import { Linear } from '../../../src/nn/linear.js';
import { manualSeed } from '../../../src/ops/creation.js';
import { dropout } from '../../../src/ops/dropout.js';
import { add, div, relu } from '../../../src/ops/elementwise.js';
import { flatten } from '../../../src/ops/shape.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { type TrainOptions, type TrainResult, train } from '../../../src/train/trainer.js';
import { fixturePath } from '../../helpers/fixtures.js';

export const SLICE = fixturePath('fashion_mnist_slice');

/** 784 -> 32 -> 10 with dropout, so the run draws from the global generator too. */
export class TinyMlp extends Module {
  fc1 = new Linear(784, 32);
  fc2 = new Linear(32, 10);
  forward(x: Tensor): Tensor {
    const h = relu(this.fc1.forward(flatten(x, 1))); // (B, 32)
    return this.fc2.forward(dropout(h, 0.1, this.training));
  }
}

/** Two heads on shared features, like DeiT's class and distillation tokens; eval logits are their mean. */
export class TinyDistilled extends Module {
  fc1 = new Linear(784, 32);
  head = new Linear(32, 10);
  head_dist = new Linear(32, 10);
  forwardHeads(x: Tensor): { logits: Tensor; distLogits: Tensor } {
    const h = relu(this.fc1.forward(flatten(x, 1)));
    return { logits: this.head.forward(h), distLogits: this.head_dist.forward(h) };
  }
  forward(x: Tensor): Tensor {
    const { logits, distLogits } = this.forwardHeads(x);
    return div(add(logits, distLogits), 2);
  }
}

export function sliceData() {
  return { train: readFashionMnistDir(SLICE, 'train'), eval: readFashionMnistDir(SLICE, 'test') };
}

/** The run the resume test repeats: every stateful feature on (mixup, EMA, clipping, warmup, dropout). */
export function tinyRunOptions(outDir: string | null, overrides: Partial<TrainOptions> = {}): TrainOptions {
  manualSeed(1234);
  const data = sliceData();
  return {
    model: new TinyMlp(),
    train: data.train,
    eval: data.eval,
    epochs: 3,
    batchSize: 50,
    lr: 3e-3,
    warmupEpochs: 0.5,
    weightDecay: 0.05,
    labelSmoothing: 0.1,
    clipGrad: 1,
    mixup: { mixupAlpha: 0.4, cutmixAlpha: 1, prob: 0.5 },
    ema: { decay: 0.9, warmup: true },
    trainTransform: compose([randomCrop(28, { padding: 2 }), randomHorizontalFlip()]),
    seed: 7,
    outDir,
    checkpointEvery: 4,
    logEvery: 5,
    meta: { model: 'tiny_mlp' },
    ...overrides,
  };
}

export function runTiny(outDir: string | null, overrides: Partial<TrainOptions> = {}): Promise<TrainResult> {
  return train(tinyRunOptions(outDir, overrides));
}

/**
 * A "teacher" that knows every image of a dataset and answers `relabel(label)` for it with a
 * confident one-hot: what a student's distillation head should learn, easy to tell from the truth.
 */
export class LookupTeacher extends Module {
  private readonly answers = new Map<string, number>();
  constructor(
    dataset: {
      length: number;
      get(i: number): { image: { data: Float32Array }; label: number } | Promise<unknown>;
    },
    relabel: (label: number) => number,
    readonly numClasses = 10,
  ) {
    super();
    for (let i = 0; i < dataset.length; i++) {
      const s = dataset.get(i) as { image: { data: Float32Array }; label: number };
      this.answers.set(LookupTeacher.key(s.image.data), relabel(s.label));
    }
  }
  private static key(pixels: Float32Array): string {
    return Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength).toString('base64');
  }
  forward(x: Tensor): Tensor {
    const [b] = x.shape;
    const size = x.size / b;
    const out = new Float32Array(b * this.numClasses);
    for (let i = 0; i < b; i++) {
      const label = this.answers.get(
        LookupTeacher.key((x.data as Float32Array).subarray(i * size, (i + 1) * size)),
      );
      if (label === undefined) throw new Error('LookupTeacher: an image it has not seen');
      out[i * this.numClasses + label] = 10;
    }
    return new Tensor(out, [b, this.numClasses]);
  }
}

/** Every file of a directory as base64, to prove a failed command changed nothing. */
export function snapshotDir(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f)).toString('base64')]));
}
