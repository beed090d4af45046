/**
 * The explorer's HTTP server: the web page (web/dist), the bundled samples, and a JSON API over the
 * models (classify, explain, mean attention distance) and the Itti-Koch saliency model. Model work
 * runs in a worker pool, so the event loop stays free; a full queue answers 503.
 *
 *   const { app } = await buildExplorer({ webDir: null });
 *   await app.listen({ host: '127.0.0.1', port: 0 });
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { EXPLAIN_METHODS } from '../explain/explain.js';
import { colorAt } from '../io/image.js';
import { readLog } from '../train/log.js';
import { BadRequest, HttpError } from './errors.js';
import { checkImage, type ImageLimits, imageFromJson, Params, SampleStore } from './input.js';
import { embeddedModelSpecs, type ModelSpec } from './model_spec.js';
import { WorkerPool } from './pool.js';
import type { Job } from './protocol.js';

export const DEFAULT_WEB_DIR = fileURLToPath(new URL('../../web/dist/', import.meta.url));
export const DEFAULT_SAMPLES_DIR = fileURLToPath(new URL('../../web/public/samples/', import.meta.url));

export interface ExplorerOptions {
  /** The models to serve, the first one the default (default: the embedded Fashion-MNIST ViT). */
  models?: ModelSpec[];
  /** Worker threads running model work (default: 2, or 1 on a single core). */
  workers?: number;
  /** Requests that may wait for a worker before the server answers 503 (default 32). */
  maxQueue?: number;
  /** The built page to serve at /, or null for the API alone (default web/dist). */
  webDir?: string | null;
  samplesDir?: string;
  limits?: Partial<ImageLimits>;
  logger?: boolean;
}

const DEFAULT_LIMITS: ImageLimits = { maxBytes: 8 * 2 ** 20, maxPixels: 40e6 };
const COLORMAPS = ['inferno', 'viridis', 'jet', 'gray'] as const;

export interface Explorer {
  app: FastifyInstance;
  pool: WorkerPool;
}

export async function buildExplorer(options: ExplorerOptions = {}): Promise<Explorer> {
  const specs = options.models ?? embeddedModelSpecs();
  if (specs.length === 0) throw new Error('buildExplorer: no models to serve');
  const cores = availableParallelism();
  const workers = options.workers ?? Math.min(2, cores);
  if (!Number.isInteger(workers) || workers < 1) {
    throw new Error(`buildExplorer: workers must be a positive integer, got ${workers}`);
  }
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const samples = new SampleStore(options.samplesDir ?? DEFAULT_SAMPLES_DIR);
  const pool = await WorkerPool.start(specs, {
    workers,
    maxQueue: options.maxQueue ?? 32,
    // One worker may use every core; several share the native thread pool, so each stays on one thread.
    threadsPerWorker: workers === 1 ? cores : 1,
  });
  const models = pool.descriptions;
  const defaultModel = models[0].id;

  // base64 JSON is 4/3 of the image plus the other fields.
  const jsonLimit = Math.ceil((limits.maxBytes * 4) / 3) + 64 * 1024;
  const app = Fastify({ logger: options.logger ?? false, bodyLimit: jsonLimit });
  app.addHook('onClose', () => pool.close());
  for (const type of ['application/octet-stream', /^image\/[\w.+-]+$/]) {
    app.addContentTypeParser(type, { parseAs: 'buffer', bodyLimit: limits.maxBytes }, (_req, body, done) =>
      done(null, body),
    );
  }
  app.addHook('onSend', async (_req, reply) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header(
      'content-security-policy',
      "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; connect-src 'self'",
    );
  });
  app.setErrorHandler((err: Error & { code?: string; statusCode?: number }, req, reply) => {
    const first = (m: string) => m.split('\n')[0];
    if (err instanceof HttpError) {
      if (err.status === 503) reply.header('retry-after', '1');
      return reply.status(err.status).send({ error: err.message });
    }
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.status(400).send({
        error: `the upload is too large; the limit is ${(limits.maxBytes / 2 ** 20).toFixed(1)} MiB per image`,
      });
    }
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return reply.status(400).send({
        error: `content type '${req.headers['content-type'] ?? ''}' is not accepted; send JSON or the raw image bytes (image/* or application/octet-stream)`,
      });
    }
    if (err.statusCode && err.statusCode < 500) {
      return reply.status(err.statusCode === 413 ? 400 : err.statusCode).send({ error: first(err.message) });
    }
    req.log.error(err);
    return reply.status(500).send({ error: first(err.message) });
  });

  /** The request's parameters (JSON fields, else the query string) and its image bytes, checked. */
  async function requestInput(req: FastifyRequest): Promise<{ p: Params; image: Uint8Array }> {
    const query = (req.query ?? {}) as Record<string, unknown>;
    let image: Uint8Array;
    let p: Params;
    if (Buffer.isBuffer(req.body)) {
      p = new Params(query);
      image = new Uint8Array(req.body.buffer, req.body.byteOffset, req.body.length);
    } else {
      const body = req.body;
      if (!body || typeof body !== 'object' || Array.isArray(body)) {
        throw new BadRequest('send a JSON object ({ "image": ..., "model": ... }) or the raw image bytes');
      }
      p = new Params({ ...query, ...(body as Record<string, unknown>) });
      image = imageFromJson(body as Record<string, unknown>, samples);
    }
    await checkImage(image, limits);
    return { p, image };
  }

  function modelOf(p: Params) {
    const id = p.string('model') ?? defaultModel;
    const model = models.find((m) => m.id === id);
    if (!model) {
      throw new BadRequest(
        `unknown model '${id.slice(0, 60)}'; available: ${models.map((m) => m.id).join(', ')}`,
      );
    }
    return model;
  }

  const run = (job: Job, image: Uint8Array) => pool.run(job, image);

  app.get('/api/health', async () => ({
    ok: true,
    backend: pool.backend,
    workers,
    threadsPerWorker: pool.options.threadsPerWorker,
    busy: pool.busyWorkers,
    queued: pool.queued,
  }));

  app.get('/api/models', async () => ({ default: defaultModel, models }));

  app.get('/api/samples', async () => ({
    samples: samples.samples.map((s) => ({ ...s, url: `/samples/${s.file}` })),
  }));

  app.get('/api/colormaps', async () =>
    Object.fromEntries(COLORMAPS.map((c) => [c, Array.from({ length: 256 }, (_, i) => colorAt(c, i / 255))])),
  );

  app.get('/api/models/:id/log', async (req) => {
    const { id } = req.params as { id: string };
    const index = specs.findIndex((s) => s.id === id);
    if (index < 0)
      throw new BadRequest(
        `unknown model '${id.slice(0, 60)}'; available: ${specs.map((s) => s.id).join(', ')}`,
      );
    const log = specs[index].log;
    if (!log || !existsSync(log)) throw new HttpError(404, `model '${id}' has no training log`);
    return { model: id, epochs: readLog(log).filter((r) => r.type === 'epoch') };
  });

  app.post('/api/classify', async (req) => {
    const { p, image } = await requestInput(req);
    const model = modelOf(p);
    return run(
      {
        kind: 'classify',
        model: model.id,
        top: p.integer('top', 1, model.numClasses, Math.min(5, model.numClasses)),
      },
      image,
    );
  });

  app.post('/api/explain', async (req) => {
    const { p, image } = await requestInput(req);
    const model = modelOf(p);
    if (!model.attention) {
      throw new BadRequest(
        `explain: model '${model.id}' (${model.family}) has no attention maps; use a ViT, DeiT or Swin model`,
      );
    }
    const method = p.oneOf('method', EXPLAIN_METHODS, 'rollout');
    if (!model.methods.includes(method)) {
      throw new BadRequest(
        `explain: method '${method}' does not apply to ${model.family} models; use ${model.methods.join(', ')}`,
      );
    }
    const target = p.integer('class', 0, model.numClasses - 1);
    if (target !== undefined && (method === 'rollout' || method === 'flow')) {
      throw new BadRequest(
        `explain: class applies to grad-rollout and gradcam; ${method} does not depend on the class`,
      );
    }
    return run(
      {
        kind: 'explain',
        model: model.id,
        method,
        headFusion: p.oneOf('headFusion', ['mean', 'max', 'min'] as const, 'mean'),
        discardRatio: p.number(
          'discardRatio',
          (v) => v >= 0 && v < 1,
          'use a fraction in [0, 1), e.g. 0.9',
          0,
        ),
        target,
        heads: p.boolean('heads', true),
        png: p.boolean('png', false),
        top: p.integer('top', 1, model.numClasses, Math.min(5, model.numClasses)),
      },
      image,
    );
  });

  app.post('/api/attention-distance', async (req) => {
    const { p, image } = await requestInput(req);
    const model = modelOf(p);
    if (model.attention?.kind !== 'tokens') {
      throw new BadRequest(
        `attention-distance: model '${model.id}' has no global attention over patch tokens; use a ViT or DeiT model`,
      );
    }
    return run({ kind: 'attention-distance', model: model.id }, image);
  });

  app.post('/api/saliency', async (req) => {
    const { p, image } = await requestInput(req);
    return run(
      {
        kind: 'saliency',
        fixations: p.integer('fixations', 1, 20, 6),
        maxSize: p.integer('maxSize', 64, 1024, 384),
        png: p.boolean('png', false),
      },
      image,
    );
  });

  app.setNotFoundHandler((req, reply) =>
    reply.status(404).send({
      error: `no such ${req.url.startsWith('/api/') ? 'API route' : 'page'}: ${req.method} ${req.url.slice(0, 80)}`,
    }),
  );

  await app.register(fastifyStatic, { root: samples.dir, prefix: '/samples/', index: false });
  const webDir = options.webDir === undefined ? DEFAULT_WEB_DIR : options.webDir;
  if (webDir) await app.register(fastifyStatic, { root: webDir, prefix: '/', decorateReply: false });
  return { app, pool };
}
