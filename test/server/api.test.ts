/**
 * The explorer's JSON API against a real server on 127.0.0.1:0 with the embedded model: every route's
 * answer checked against the library run in this process, the three ways to send an image, each
 * bad input's 400, a burst of concurrent requests that must come back complete and unmixed, and the
 * bounded queue's 503.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import '../../src/index.js';
import { meanAttentionDistance } from '../../src/explain/distance.js';
import { attentionRollout } from '../../src/explain/rollout.js';
import { readImage } from '../../src/io/image.js';
import { softmax } from '../../src/ops/normalization.js';
import { buildExplorer, DEFAULT_SAMPLES_DIR, type Explorer } from '../../src/server/app.js';
import { type LoadedModel, loadModel, modelInput } from '../../src/server/model_loader.js';
import { embeddedModelSpec, userModelSpec } from '../../src/server/model_spec.js';
import type {
  ClassifyResult,
  DistanceResult,
  ExplainResult,
  ModelDescription,
  SaliencyResult,
} from '../../src/server/protocol.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { assertClose } from '../helpers/assert.js';

let explorer: Explorer;
let base: string;
let local: LoadedModel;

const sampleBytes = (file: string) => new Uint8Array(readFileSync(join(DEFAULT_SAMPLES_DIR, file)));

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  const raw = body instanceof Uint8Array;
  const response = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': raw ? 'application/octet-stream' : 'application/json', ...headers },
    body: (raw ? body : typeof body === 'string' ? body : JSON.stringify(body)) as BodyInit,
  });
  return {
    status: response.status,
    headers: response.headers,
    json: (await response.json()) as Record<string, unknown>,
  };
}

async function ok<T>(path: string, body: unknown): Promise<T> {
  const r = await post(path, body);
  assert.equal(r.status, 200, `${path}: ${JSON.stringify(r.json).slice(0, 200)}`);
  return r.json as T;
}

async function badRequest(
  path: string,
  body: unknown,
  pattern: RegExp,
  headers: Record<string, string> = {},
) {
  const r = await post(path, body, headers);
  assert.equal(r.status, 400, `${path} should refuse with 400: ${JSON.stringify(r.json).slice(0, 200)}`);
  const error = String(r.json.error);
  assert.match(error, pattern);
  assert.ok(!error.includes('\n'), 'one-line message');
}

/** The embedded model's probabilities for a sample, computed in this process. */
async function expectedProbabilities(file: string): Promise<Float32Array> {
  const { input } = modelInput(await readImage(sampleBytes(file)), local.model.pretrainedCfg);
  return noGrad(() => softmax(local.model.forward(input), -1)).data as Float32Array;
}

/** A PNG whose header claims width x height (no pixel data follows). */
function pngHeader(width: number, height: number): Uint8Array {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const out = Buffer.alloc(8 + data.length + 4);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return new Uint8Array(
    Buffer.concat([
      signature,
      chunk('IHDR', ihdr),
      chunk('IDAT', deflateSync(Buffer.alloc(16))),
      chunk('IEND', Buffer.alloc(0)),
    ]),
  );
}

/** The embedded model's depth, heads, patches and token layout (whichever checkpoint is committed). */
function architecture() {
  const layout = local.layout;
  assert.ok(layout?.kind === 'tokens', 'the embedded model is a ViT');
  const attention = local.description.attention!;
  const [gh, gw] = layout.gridSize;
  return {
    depth: attention.layers,
    heads: attention.heads[0],
    patches: gh * gw,
    tokenOptions: {
      prefixTokens: layout.prefixTokens,
      tokenIndex: layout.tokenIndex,
      gridSize: layout.gridSize,
      patchSize: layout.patchSize,
    },
  };
}

before(async () => {
  explorer = await buildExplorer({ webDir: null, workers: 2 });
  base = await explorer.app.listen({ host: '127.0.0.1', port: 0 });
  local = await loadModel(embeddedModelSpec());
});

after(async () => {
  await explorer?.app.close();
});

describe('explorer API', () => {
  test('lists the embedded model with its attention layout, and the samples', async () => {
    const { models, default: id } = (await (await fetch(`${base}/api/models`)).json()) as {
      models: ModelDescription[];
      default: string;
    };
    assert.equal(id, 'vit_fashion');
    const m = models[0];
    assert.deepEqual(m.inputSize, [1, 28, 28]);
    assert.equal(m.labels?.[9], 'Ankle boot');
    assert.deepEqual(m.attention, local.description.attention);
    assert.equal(m.attention?.kind, 'tokens');
    assert.deepEqual(m.methods, ['rollout', 'flow', 'grad-rollout', 'gradcam']);
    const { samples } = (await (await fetch(`${base}/api/samples`)).json()) as {
      samples: { id: string; url: string }[];
    };
    assert.ok(samples.some((s) => s.id === 'chelsea') && samples.some((s) => s.id === 'fashion-9'));
    const image = await fetch(base + samples[0].url);
    assert.equal(image.status, 200);
    assert.match(String(image.headers.get('content-type')), /^image\//);
  });

  test('classify: the same top-k as the library, for a sample id, base64 JSON, a data URL and raw bytes', async () => {
    const expected = await expectedProbabilities('fashion/9.png');
    const order = Array.from(expected.keys()).sort((a, b) => expected[b] - expected[a]);
    const b64 = Buffer.from(sampleBytes('fashion/9.png')).toString('base64');
    const answers: ClassifyResult[] = [
      await ok('/api/classify', { image: { sample: 'fashion-9' }, top: 3 }),
      await ok('/api/classify', { image: { data: b64 }, top: 3 }),
      await ok('/api/classify', { image: `data:image/png;base64,${b64}`, top: 3 }),
    ];
    const raw = await fetch(`${base}/api/classify?top=3`, {
      method: 'POST',
      headers: { 'content-type': 'image/png' },
      body: sampleBytes('fashion/9.png'),
    });
    answers.push((await raw.json()) as ClassifyResult);
    for (const a of answers) {
      assert.deepEqual(
        a.top.map((t) => t.class),
        order.slice(0, 3),
      );
      assertClose(
        a.top.map((t) => t.probability),
        order.slice(0, 3).map((c) => expected[c]),
        1e-5,
        'probabilities',
      );
      assert.equal(a.top[0].label, local.model.pretrainedCfg.labels?.[order[0]]);
      assert.match(a.picture, /^data:image\/png;base64,/);
    }
    const picture = await readImage(Buffer.from(answers[0].picture.split(',')[1], 'base64'));
    assert.deepEqual(picture.shape, [3, 28, 28]);
  });

  test('explain rollout: every layer depth equals attentionRollout over that many layers; heads per layer', async () => {
    const r = await ok<ExplainResult>('/api/explain', {
      image: { sample: 'fashion-3' },
      method: 'rollout',
      png: true,
    });
    const { depth, heads, patches, tokenOptions } = architecture();
    assert.deepEqual(
      r.layers,
      Array.from({ length: depth }, (_, l) => l + 1),
    );
    assert.deepEqual(r.gridSize, tokenOptions.gridSize);
    const { input } = modelInput(await readImage(sampleBytes('fashion/3.png')), local.model.pretrainedCfg);
    const { attentions } = noGrad(() => local.model.forward(input, { captureAttention: true }));
    for (const l of [1, Math.ceil(depth / 2), depth]) {
      const expected = attentionRollout(attentions.slice(0, l), tokenOptions).map;
      assertClose(r.maps[l - 1][0], expected, 1e-3, `rollout through layer ${l}`);
    }
    assert.equal(r.heads?.length, depth);
    assert.ok(
      r.heads?.every((layer) => layer.length === heads && layer.every((map) => map.length === patches)),
    );
    assert.ok(r.heads?.every((layer) => layer.every((map) => Math.abs(Math.max(...map) - 1) < 1e-3)));
    assert.match(String(r.overlay), /^data:image\/png;base64,/);
    const overlay = await readImage(Buffer.from(String(r.overlay).split(',')[1], 'base64'));
    assert.deepEqual(overlay.shape, [3, 28, 28]);
  });

  test('explain flow, grad-rollout and gradcam: a map per layer, the class asked for', async () => {
    const flow = await ok<ExplainResult>('/api/explain', { image: { sample: 'fashion-3' }, method: 'flow' });
    const { depth, patches } = architecture();
    assert.equal(flow.maps.length, depth);
    assert.equal(flow.target, null);
    const grad = await ok<ExplainResult>('/api/explain', {
      image: { sample: 'fashion-3' },
      method: 'gradcam',
      class: 3,
    });
    assert.equal(grad.target, 3);
    assert.equal(grad.maps.length, depth);
    const rollout = await ok<ExplainResult>('/api/explain', {
      image: { sample: 'fashion-3' },
      method: 'grad-rollout',
      heads: false,
    });
    assert.equal(rollout.heads, null);
    assert.equal(rollout.target, rollout.top[0].class, 'the predicted class by default');
    for (const r of [flow, grad, rollout]) {
      for (const layer of r.maps)
        assert.ok(layer[0].length === patches && layer[0].every((v) => v >= 0 && v <= 1));
    }
  });

  test('attention distance equals meanAttentionDistance; saliency gives a scanpath inside the image', async () => {
    const d = await ok<DistanceResult>('/api/attention-distance', { image: { sample: 'fashion-5' } });
    const { input } = modelInput(await readImage(sampleBytes('fashion/5.png')), local.model.pretrainedCfg);
    const { attentions } = noGrad(() => local.model.forward(input, { captureAttention: true }));
    const expected = meanAttentionDistance(attentions, architecture().tokenOptions);
    assertClose(d.distances.flat(), expected.flat(), 1e-3, 'distances');

    const s = await ok<SaliencyResult>('/api/saliency', {
      image: { sample: 'chelsea' },
      fixations: 4,
      maxSize: 256,
    });
    assert.equal(Math.max(s.width, s.height), 256);
    assert.equal(s.saliency.values.length, s.mapSize[0] * s.mapSize[1]);
    assert.equal(s.conspicuity.color.values.length, s.saliency.values.length);
    assert.ok(s.fixations.length >= 1 && s.fixations.length <= 4);
    for (const f of s.fixations) assert.ok(f.x >= 0 && f.x < s.width && f.y >= 0 && f.y < s.height);
    assert.ok(
      s.fixations.every((f, k) => k === 0 || f.t > s.fixations[k - 1].t),
      'fixations in time order',
    );
  });

  test('bad input: one-line 400s', async () => {
    const text = new TextEncoder().encode('just some text, not an image');
    await badRequest('/api/classify', text, /not an image \(checked by content\)/);
    await badRequest('/api/classify', text, /not an image/, { 'content-type': 'image/png' });
    await badRequest(
      '/api/classify',
      { image: { data: Buffer.from(text).toString('base64') } },
      /not an image/,
    );
    const png = sampleBytes('fashion/1.png');
    await badRequest('/api/classify', png.slice(0, 60), /cannot be read|not a readable image/);
    await badRequest(
      '/api/classify',
      pngHeader(20000, 10000),
      /20000x10000 pixels; the limit is 40 megapixels/,
    );
    await badRequest('/api/classify', new Uint8Array(9 * 2 ** 20), /too large; the limit is 8\.0 MiB/);
    await badRequest('/api/classify', { image: { sample: '../../package.json' } }, /unknown sample/);
    await badRequest('/api/classify', {}, /missing image/);
    await badRequest('/api/classify', { image: 'not a data url' }, /data URL/);
    await badRequest(
      '/api/classify',
      { image: { sample: 'chelsea' }, model: 'resnet9000' },
      /unknown model 'resnet9000'; available: vit_fashion/,
    );
    await badRequest('/api/classify', { image: { sample: 'chelsea' }, top: 0 }, /top 0 is invalid/);
    await badRequest(
      '/api/explain',
      { image: { sample: 'chelsea' }, method: 'magic' },
      /method 'magic' is not one of/,
    );
    await badRequest(
      '/api/explain',
      { image: { sample: 'chelsea' }, discardRatio: 1 },
      /discardRatio 1 is invalid/,
    );
    await badRequest(
      '/api/explain',
      { image: { sample: 'chelsea' }, method: 'rollout', class: 2 },
      /class applies to grad-rollout/,
    );
    await badRequest(
      '/api/explain',
      { image: { sample: 'chelsea' }, method: 'gradcam', class: 10 },
      /class 10 is invalid/,
    );
    await badRequest(
      '/api/saliency',
      { image: { sample: 'chelsea' }, fixations: 'many' },
      /fixations "many" is invalid/,
    );
    await badRequest('/api/classify', '{"image": ', /JSON/);
    await badRequest('/api/classify', 'x', /content type 'multipart\/form-data.*' is not accepted/, {
      'content-type': 'multipart/form-data; boundary=x',
    });
    const traversal = await fetch(`${base}/samples/..%2f..%2fpackage.json`);
    assert.equal(traversal.status, 404);
    assert.equal((await fetch(`${base}/api/nothing`)).status, 404);
  });

  test('a burst of 24 concurrent requests: every answer complete and for its own image', async () => {
    const files = ['fashion/0.png', 'fashion/1.png', 'fashion/7.png', 'fashion/8.png'];
    const expected = await Promise.all(files.map(expectedProbabilities));
    const jobs = Array.from({ length: 24 }, (_, i) => i % files.length);
    const answers = await Promise.all(
      jobs.map((k, i) =>
        i % 2
          ? ok<ClassifyResult>('/api/classify', {
              image: { sample: `fashion-${files[k].match(/\d/)![0]}` },
              top: 10,
            })
          : ok<ExplainResult>('/api/explain', {
              image: { data: Buffer.from(sampleBytes(files[k])).toString('base64') },
              top: 10,
            }),
      ),
    );
    answers.forEach((a, i) => {
      const probs = expected[jobs[i]];
      for (const t of a.top)
        assert.ok(Math.abs(t.probability - probs[t.class]) < 1e-5, `request ${i} got another image's answer`);
    });
  });
});

describe('explorer queue', () => {
  test('a full queue answers 503 at once with Retry-After; the accepted requests complete', async () => {
    const small = await buildExplorer({ webDir: null, workers: 1, maxQueue: 2 });
    try {
      // Submitted synchronously: one runs, two wait, the rest are refused.
      const image = () => sampleBytes('fashion/2.png');
      const results = await Promise.allSettled(
        Array.from({ length: 6 }, () =>
          small.pool.run({ kind: 'classify', model: 'vit_fashion', top: 1 }, image()),
        ),
      );
      assert.deepEqual(
        results.map((r) => r.status),
        ['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'rejected', 'rejected'],
      );
      assert.match(
        String((results[3] as PromiseRejectedResult).reason.message),
        /server busy: 2 requests already wait/,
      );

      const url = await small.app.listen({ host: '127.0.0.1', port: 0 });
      let finished = false;
      const burst = Promise.all(
        Array.from({ length: 8 }, async () => {
          const r = await fetch(`${url}/api/explain`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ image: { sample: 'fashion-2' }, method: 'flow' }),
          });
          const body = (await r.json()) as { error?: string };
          if (r.status === 503) {
            assert.equal(r.headers.get('retry-after'), '1');
            assert.match(String(body.error), /server busy/);
          }
          return r.status;
        }),
      ).finally(() => {
        finished = true;
      });
      // The event loop stays free while the worker computes: health answers before the burst ends.
      let health: { busy: number } | null = null;
      while (!finished && !health?.busy) {
        health = (await (await fetch(`${url}/api/health`)).json()) as { busy: number };
      }
      assert.ok(health?.busy === 1 && !finished, 'the server answered /api/health while its worker was busy');
      const statuses = await burst;
      assert.ok(
        statuses.every((s) => s === 200 || s === 503),
        statuses.join(','),
      );
      assert.ok(statuses.filter((s) => s === 200).length >= 3, statuses.join(','));
      assert.ok(
        statuses.includes(503),
        `8 flow requests at once on one worker with a queue of 2: ${statuses.join(',')}`,
      );
    } finally {
      await small.app.close();
    }
  });
});

describe('explorer with user checkpoints', () => {
  const peers = 'test/fixtures/peers';
  let server: Explorer;
  let url: string;
  const explain = async (model: string, method: string) => {
    const r = await fetch(`${url}/api/explain`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: { sample: 'chelsea' }, model, method }),
    });
    return { status: r.status, body: (await r.json()) as ExplainResult & { error?: string } };
  };

  before(async () => {
    const kwargs = (v: unknown) => JSON.stringify(v);
    server = await buildExplorer({
      webDir: null,
      workers: 1,
      models: [
        userModelSpec({
          model: 'deit_tiny_distilled_patch16_224',
          weights: `${peers}/timm_deit_distilled.safetensors`,
          kwargs: kwargs({
            img_size: 32,
            patch_size: 4,
            num_classes: 10,
            embed_dim: 48,
            depth: 2,
            num_heads: 3,
          }),
        }),
        userModelSpec({
          model: 'swin_tiny_patch4_window7_224',
          weights: `${peers}/timm_swin.safetensors`,
          kwargs: kwargs({
            img_size: 64,
            patch_size: 4,
            window_size: 4,
            embed_dim: 32,
            depths: [2, 2],
            num_heads: [2, 4],
            num_classes: 10,
          }),
        }),
        userModelSpec({
          model: 'resnet50',
          weights: `${peers}/timm_resnet_bottleneck.safetensors`,
          kwargs: kwargs({ layers: [1, 1, 1, 1], base_width: 16, num_classes: 10 }),
        }),
        userModelSpec({ config: `${peers}/hf_vit.config.json`, weights: `${peers}/hf_vit.safetensors` }),
      ],
    });
    url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  });

  after(async () => {
    await server?.app.close();
  });

  test('DeiT: class and distillation maps; Swin: rollout only; ResNet: classify only; Hugging Face ViT', async () => {
    const ids = server.pool.descriptions.map((m) => m.id);
    assert.deepEqual(ids, [
      'deit_tiny_distilled_patch16_224',
      'swin_tiny_patch4_window7_224',
      'resnet50',
      'peers',
    ]);
    const deit = await explain('deit_tiny_distilled_patch16_224', 'grad-rollout');
    assert.equal(deit.status, 200, deit.body.error);
    assert.deepEqual(deit.body.tokenNames, ['cls', 'dist']);
    assert.ok(deit.body.maps.every((layer) => layer.length === 2 && layer[1].length === 64));

    const swin = await explain('swin_tiny_patch4_window7_224', 'rollout');
    assert.equal(swin.status, 200, swin.body.error);
    assert.equal(swin.body.layers.length, 1);
    assert.equal(swin.body.heads, null);
    assert.deepEqual(swin.body.gridSize, [16, 16]);
    const swinFlow = await explain('swin_tiny_patch4_window7_224', 'flow');
    assert.equal(swinFlow.status, 400);
    assert.match(String(swinFlow.body.error), /method 'flow' does not apply to swin models; use rollout/);

    const resnet = await explain('resnet50', 'rollout');
    assert.equal(resnet.status, 400);
    assert.match(String(resnet.body.error), /has no attention maps/);
    const classified = await fetch(`${url}/api/classify`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: { sample: 'chelsea' }, model: 'resnet50', top: 10 }),
    });
    assert.equal(((await classified.json()) as ClassifyResult).top.length, 10);

    const hf = await explain('peers', 'rollout');
    assert.equal(hf.status, 200, hf.body.error);
    assert.equal(hf.body.maps.length, 2);
  });
});
