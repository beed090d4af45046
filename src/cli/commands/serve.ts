/**
 * glimpse serve (npm start): the explorer, a local web page and JSON API that show where models look.
 *   glimpse serve [--host 127.0.0.1] [--port 5173] [--model ID --weights FILE | --config config.json
 *     --weights FILE | --weights RUN/model.safetensors] [--workers N] [--queue N]
 */
import { availableParallelism } from 'node:os';
import type { Command } from 'commander';
import { buildExplorer } from '../../server/app.js';
import {
  embeddedModelSpecs,
  type ModelSpec,
  type UserModelOptions,
  userModelSpec,
} from '../../server/model_spec.js';
import { ensureWebBundle } from '../../server/web_bundle.js';

interface ServeOptions extends UserModelOptions {
  host: string;
  port: string;
  workers?: string;
  queue: string;
}

function positiveInteger(flag: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min)
    throw new Error(`serve: ${flag} must be an integer >= ${min}, got '${value}'`);
  return n;
}

async function serve(o: ServeOptions): Promise<void> {
  const port = positiveInteger('--port', o.port, 0);
  if (port > 65535)
    throw new Error(`serve: --port ${port} is not a port number (0..65535; 0 picks a free one)`);
  const workers = o.workers === undefined ? undefined : positiveInteger('--workers', o.workers, 1);
  const maxQueue = positiveInteger('--queue', o.queue, 0);
  const models: ModelSpec[] = [];
  if (o.model || o.weights || o.config) models.push(userModelSpec(o));
  models.push(...embeddedModelSpecs());
  const log = (line: string) => process.stdout.write(`${line}\n`);
  const webDir = await ensureWebBundle(log);
  log(`loading ${models.map((m) => m.id).join(', ')} ...`);
  const { app, pool } = await buildExplorer({ models, workers, maxQueue, webDir });
  try {
    await app.listen({ host: o.host, port });
  } catch (e) {
    await app.close();
    const code = (e as { code?: string }).code;
    if (code === 'EADDRINUSE')
      throw new Error(`serve: port ${port} on ${o.host} is in use; pass --port N (0 picks a free one)`);
    throw e;
  }
  for (const m of pool.descriptions) {
    if (m.warning) log(`note: ${m.id}: ${m.warning}`);
    for (const note of m.notes) log(`note: ${m.id}: ${note}`);
  }
  const address = app.server.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  log(
    `glimpse explorer: http://${host}:${actualPort}/  (models: ${pool.descriptions.map((m) => m.id).join(', ')}; ${pool.options.workers} workers of ${availableParallelism()} cores; Ctrl+C stops)`,
  );
  const stop = () => {
    app.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

export function register(program: Command): void {
  program
    .command('serve')
    .alias('start')
    .description('The explorer: a local web page and JSON API showing where models look (npm start)')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port (0 picks a free one)', '5173')
    .option('--model <id>', 'serve this zoo model (timm id, e.g. vit_base_patch16_224) with --weights')
    .option(
      '--weights <file>',
      'its checkpoint (.safetensors; timm / Hugging Face / torchvision, or a glimpse train run)',
    )
    .option('--config <file>', 'a Hugging Face config.json to build the model from (with --weights)')
    .option('--kwargs <json>', 'architecture overrides for --model, e.g. \'{"num_classes": 10}\'')
    .option('--workers <n>', 'worker threads running the models (default: 2, 1 on a single core)')
    .option('--queue <n>', 'requests that may wait for a worker before the server answers 503', '32')
    .action(serve);
}
