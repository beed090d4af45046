/**
 * Weights whose storage a backend has rewritten into its own layout for inference
 * (prepackForInference): storage -> the backend that packed it. The ops that read a weight check it
 * here, so that another backend's kernels fail with a clear error instead of reading the packed
 * panels as if they were the weight.
 */
import { getBackend } from './backend.js';

const packedBy = new WeakMap<ArrayBufferView, string>();

export function markPrepacked(data: ArrayBufferView, backend: string): void {
  packedBy.set(data, backend);
}

/** Throws when `data` was packed by a backend other than the active one. */
export function checkPrepacked(data: ArrayBufferView, op: string): void {
  const owner = packedBy.get(data);
  if (owner === undefined) return;
  const active = getBackend();
  if (owner !== active) {
    throw new Error(
      `${op}: a weight was pre-packed for inference by the '${owner}' backend (prepackForInference) but '${active}' is active; run the model on '${owner}' or use a model as loaded`,
    );
  }
}
