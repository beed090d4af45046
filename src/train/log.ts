/**
 * Training logs as JSON Lines: one record per logged step and one per epoch, appended as they
 * happen. A resumed run first cuts the file back to what its checkpoint covers, so the log never
 * holds a step twice.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../io/safetensors.js';

export interface StepRecord {
  type: 'step';
  epoch: number;
  step: number;
  lr: number;
  loss: number;
  /** Running images per second over the logging interval. */
  images_per_s: number;
}

export interface EpochRecord {
  type: 'epoch';
  epoch: number;
  /** Optimizer steps completed at the end of this epoch. */
  step: number;
  lr: number;
  train_loss: number;
  /** Top-1 against the un-mixed labels (a rough figure when Mixup/CutMix is on). */
  train_acc: number;
  eval_loss?: number;
  eval_acc?: number;
  eval_ema_loss?: number;
  eval_ema_acc?: number;
  /** Wall-clock seconds of this epoch (training and evaluation). */
  time_s: number;
  images_per_s: number;
  /** Seconds the loop waited for data in this epoch. */
  data_wait_s: number;
  /** Process CPU seconds of this epoch, all threads (steadier than time_s on a shared machine). */
  cpu_s?: number;
  /** The 1-minute load average at the end of the epoch: how shared the machine was. */
  load_avg?: number;
}

export type LogRecord = StepRecord | EpochRecord;

/** Every complete record of a JSONL log; a torn last line (a kill mid-append) is skipped. */
export function readLog(path: string): LogRecord[] {
  if (!existsSync(path)) return [];
  const out: LogRecord[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as LogRecord);
    } catch {
      // Only the last line can be torn; anything after it was never written.
      break;
    }
  }
  return out;
}

export class JsonlLog {
  constructor(readonly path: string) {}

  append(record: LogRecord): void {
    appendFileSync(this.path, `${JSON.stringify(record)}\n`);
  }

  /**
   * Keeps what a checkpoint at (`step`, first unfinished `epoch`) covers: step records up to `step`,
   * epoch records of finished epochs. Rewritten atomically.
   */
  truncate(step: number, epoch: number): LogRecord[] {
    const kept = readLog(this.path).filter((r) => (r.type === 'step' ? r.step <= step : r.epoch < epoch));
    writeFileAtomic(this.path, kept.map((r) => `${JSON.stringify(r)}\n`).join(''));
    return kept;
  }
}
