/** The explorer's JSON API, typed by the server's protocol. */
import type {
  ClassifyResult,
  DistanceResult,
  ExplainResult,
  ModelDescription,
  Sample,
  SaliencyResult,
} from '../../src/server/protocol.js';
import type { EpochRecord } from '../../src/train/log.js';

export type { ClassifyResult, DistanceResult, EpochRecord, ExplainResult, ModelDescription, SaliencyResult };
export type SampleEntry = Sample & { url: string };
export type ExplainMethod = ExplainResult['method'];
export type Colormaps = Record<'inferno' | 'viridis' | 'jet' | 'gray', [number, number, number][]>;

/** An image for the API: a bundled sample or an uploaded file as a data URL. */
export type ImageRef = { sample: string } | string;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function request<T>(path: string, body?: Record<string, unknown>): Promise<T> {
  const response = await fetch(path, {
    method: body ? 'POST' : 'GET',
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const payload = (await response.json().catch(() => ({}))) as T & { error?: string };
  if (!response.ok)
    throw new ApiError(response.status, payload.error ?? `${response.status} ${response.statusText}`);
  return payload;
}

export const api = {
  models: () => request<{ default: string; models: ModelDescription[] }>('/api/models'),
  samples: () => request<{ samples: SampleEntry[] }>('/api/samples'),
  colormaps: () => request<Colormaps>('/api/colormaps'),
  log: (model: string) => request<{ epochs: EpochRecord[] }>(`/api/models/${encodeURIComponent(model)}/log`),
  classify: (image: ImageRef, model: string) =>
    request<ClassifyResult>('/api/classify', { image, model, top: 5 }),
  explain: (image: ImageRef, model: string, method: ExplainMethod) =>
    request<ExplainResult>('/api/explain', { image, model, method, heads: true }),
  distance: (image: ImageRef, model: string) =>
    request<DistanceResult>('/api/attention-distance', { image, model }),
  saliency: (image: ImageRef) => request<SaliencyResult>('/api/saliency', { image, fixations: 6 }),
};
