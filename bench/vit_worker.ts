/**
 * ViT-B/16 inference throughput of one engine for bench/vit.ts, in its own process so that its
 * peak RSS is its own: `--engine glimpse|onnxruntime --batch B --iterations I [--model vit.onnx]`.
 * Prints {imagesPerSecond, peakRssMB} as JSON: the best of I timed forwards after one warm-up.
 */
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    engine: { type: 'string' },
    batch: { type: 'string' },
    iterations: { type: 'string' },
    threads: { type: 'string' },
    model: { type: 'string' },
  },
});
const batch = Number(values.batch);
const iterations = Number(values.iterations);
const threads = Number(values.threads);

async function timeForward(forward: () => Promise<void>): Promise<number> {
  await forward();
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < iterations; i++) {
    const t0 = performance.now();
    await forward();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

async function glimpse(): Promise<number> {
  const { createModel } = await import('../src/models/index.js');
  const { manualSeed, noGrad, randn } = await import('../src/index.js');
  const { nativeStatus, prepackForInference } = await import('../src/backend/native.js');
  manualSeed(0);
  const model = createModel('vit_base_patch16_224');
  model.eval();
  // Inference: the linear weights are packed once, in place, as onnxruntime does with its
  // initializers (repacking them costs ~33 ms per forward on 2 cores), memory staying at their size.
  if (nativeStatus().loaded) prepackForInference(model);
  const x = randn([batch, 3, 224, 224]);
  return timeForward(async () => {
    noGrad(() => model.forward(x));
  });
}

async function onnxruntime(): Promise<number> {
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(values.model!, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const data = new Float32Array(batch * 3 * 224 * 224).map(() => Math.random());
  const feeds = { input: new ort.Tensor('float32', data, [batch, 3, 224, 224]) };
  return timeForward(async () => {
    await session.run(feeds);
  });
}

const ms = values.engine === 'glimpse' ? await glimpse() : await onnxruntime();
console.log(
  JSON.stringify({
    imagesPerSecond: batch / (ms / 1000),
    peakRssMB: process.resourceUsage().maxRSS / 1024,
  }),
);
