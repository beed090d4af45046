/**
 * A pool of worker threads that run model work off the event loop, with a bounded queue: a job waits
 * for a free worker, and when `maxQueue` jobs already wait, `run` fails at once with BusyError (the
 * server's 503) instead of letting latency grow without bound. A worker that dies is replaced and its
 * job fails; the others carry on.
 */
import { Worker } from 'node:worker_threads';
import { BadRequest, BusyError } from './errors.js';
import type { ModelSpec } from './model_spec.js';
import type { Job, JobReply, ModelDescription } from './protocol.js';

export interface PoolOptions {
  workers: number;
  /** Jobs that may wait for a free worker before run() refuses with BusyError. */
  maxQueue: number;
  /** Kernel threads of each worker's native backend. */
  threadsPerWorker: number;
}

interface Pending {
  job: Job;
  image?: Uint8Array;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

interface Slot {
  worker: Worker;
  busy: Pending | null;
  /** The id of the job in flight: a reply must carry it, so replies cannot be mixed up. */
  jobId: number;
}

const ENTRY = new URL('./worker_entry.mjs', import.meta.url);

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private closed = false;
  private nextId = 1;
  /** What each model is (filled by the first worker to load them). */
  descriptions: ModelDescription[] = [];
  /** The kernel backend the workers run on ('native' or 'js'). */
  backend = '';

  private constructor(
    private readonly specs: ModelSpec[],
    readonly options: PoolOptions,
  ) {}

  /** Starts the workers and waits until each has loaded every model (a bad checkpoint fails here). */
  static async start(specs: ModelSpec[], options: PoolOptions): Promise<WorkerPool> {
    const pool = new WorkerPool(specs, options);
    try {
      const ready = await Promise.all(Array.from({ length: options.workers }, () => pool.spawn()));
      pool.descriptions = ready[0].descriptions;
      pool.backend = ready[0].backend;
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  get queued(): number {
    return this.queue.length;
  }

  get busyWorkers(): number {
    return this.slots.filter((s) => s.busy).length;
  }

  /** Runs a job on the next free worker; image bytes are handed over (transferred), not copied. */
  run<T>(job: Job, image?: Uint8Array): Promise<T> {
    if (this.closed) return Promise.reject(new Error('worker pool is closed'));
    const free = this.slots.find((s) => !s.busy);
    if (!free && this.queue.length >= this.options.maxQueue) {
      return Promise.reject(
        new BusyError(
          `server busy: ${this.queue.length} requests already wait for ${this.slots.length} workers; retry in a moment`,
        ),
      );
    }
    return new Promise<T>((resolve, reject) => {
      const pending: Pending = { job, image, resolve: resolve as (v: unknown) => void, reject };
      if (free) this.dispatch(free, pending);
      else this.queue.push(pending);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(new Error('server is shutting down'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots.length = 0;
  }

  private spawn(): Promise<{ descriptions: ModelDescription[]; backend: string }> {
    const worker = new Worker(ENTRY, {
      workerData: { specs: this.specs },
      // Each worker runs its kernels on this many threads; the native pool is shared per process and
      // is not re-entrant, so several workers must each stay on one thread (see serve's --workers).
      env: { ...process.env, GLIMPSE_THREADS: String(this.options.threadsPerWorker) },
    });
    const slot: Slot = { worker, busy: null, jobId: 0 };
    return new Promise((resolve, reject) => {
      let started = false;
      worker.on('message', (msg: JobReply) => {
        if (msg.type === 'ready') {
          started = true;
          this.slots.push(slot);
          resolve(msg);
          this.pump();
          return;
        }
        if (msg.type === 'failed-start') {
          reject(new Error(msg.error));
          return;
        }
        const pending = slot.busy;
        slot.busy = null;
        if (pending && msg.id !== slot.jobId) {
          pending.reject(new Error(`worker answered job ${msg.id} while running job ${slot.jobId}`));
        } else if (pending) {
          if (msg.type === 'done') pending.resolve(msg.result);
          else pending.reject(msg.status === 400 ? new BadRequest(msg.error) : new Error(msg.error));
        }
        this.pump();
      });
      worker.on('error', (e) => {
        if (!started) reject(e);
        slot.busy?.reject(new Error(`worker crashed: ${e.message.split('\n')[0]}`));
        slot.busy = null;
      });
      worker.on('exit', () => {
        const i = this.slots.indexOf(slot);
        if (i >= 0) this.slots.splice(i, 1);
        slot.busy?.reject(new Error('worker exited while running the request'));
        slot.busy = null;
        if (!started) reject(new Error('worker exited before it loaded the models'));
        else if (!this.closed) this.spawn().catch(() => {});
      });
    });
  }

  private dispatch(slot: Slot, pending: Pending): void {
    slot.busy = pending;
    slot.jobId = this.nextId++;
    // Only a view that owns its whole buffer may be transferred (Node's small Buffers share a pool).
    const own = pending.image;
    const image =
      own && (own.byteOffset !== 0 || own.byteLength !== own.buffer.byteLength) ? own.slice() : own;
    slot.worker.postMessage(
      { id: slot.jobId, job: pending.job, image },
      image ? [image.buffer as ArrayBuffer] : [],
    );
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (!slot.busy) this.dispatch(slot, this.queue.shift()!);
    }
  }
}
