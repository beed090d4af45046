/**
 * A server worker thread: loads every model once, then runs one job at a time and answers with its
 * result (or a one-line error and its HTTP status).
 */
import { parentPort, workerData } from 'node:worker_threads';
// The package entry installs the tensor methods and the native backend (threads from GLIMPSE_THREADS).
import { getBackend } from '../index.js';
import { HttpError } from './errors.js';
import { attentionDistance, classify, explain, saliency } from './jobs.js';
import { type LoadedModel, loadModel } from './model_loader.js';
import type { ModelSpec } from './model_spec.js';
import type { Job, JobReply } from './protocol.js';

const port = parentPort!;
const post = (reply: JobReply) => port.postMessage(reply);
const models = new Map<string, LoadedModel>();

async function run(job: Job, image: Uint8Array): Promise<unknown> {
  if (job.kind === 'saliency') return saliency(job, image);
  const m = models.get(job.model);
  if (!m)
    throw new HttpError(400, `unknown model '${job.model}'; available: ${[...models.keys()].join(', ')}`);
  if (job.kind === 'classify') return classify(m, job, image);
  if (job.kind === 'explain') return explain(m, job, image);
  return attentionDistance(m, job, image);
}

try {
  for (const spec of (workerData as { specs: ModelSpec[] }).specs) models.set(spec.id, await loadModel(spec));
  post({
    type: 'ready',
    descriptions: [...models.values()].map((m) => m.description),
    backend: getBackend(),
  });
} catch (e) {
  post({ type: 'failed-start', error: (e as Error).message.split('\n')[0] });
  process.exit(1);
}

port.on('message', async (msg: { id: number; job: Job; image: Uint8Array }) => {
  try {
    post({ type: 'done', id: msg.id, result: await run(msg.job, msg.image) });
  } catch (e) {
    const status = e instanceof HttpError && e.status === 400 ? 400 : 500;
    post({ type: 'error', id: msg.id, error: (e as Error).message.split('\n')[0], status });
  }
});
