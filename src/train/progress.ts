/**
 * The training progress bar (cli-progress): batches of the epoch, running loss and accuracy,
 * images/s and ETA. Only drawn on a terminal; elsewhere the trainer prints one line per epoch.
 */
import cliProgress from 'cli-progress';

export interface ProgressValues {
  loss: number;
  acc: number;
  imagesPerSecond: number;
  lr: number;
}

export class TrainProgress {
  private bar: cliProgress.SingleBar | null = null;

  constructor(readonly enabled: boolean) {}

  start(epoch: number, epochs: number, total: number, done: number): void {
    if (!this.enabled) return;
    this.bar = new cliProgress.SingleBar(
      {
        format: `epoch ${epoch + 1}/${epochs} |{bar}| {value}/{total} | loss {loss} | acc {acc} | {speed} img/s | lr {lr} | ETA {eta_formatted}`,
        barsize: 24,
        hideCursor: true,
        stream: process.stderr,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(total, done, { loss: '-', acc: '-', speed: '-', lr: '-' });
  }

  update(done: number, v: ProgressValues): void {
    this.bar?.update(done, {
      loss: v.loss.toFixed(4),
      acc: `${(100 * v.acc).toFixed(1)}%`,
      speed: v.imagesPerSecond.toFixed(0),
      lr: v.lr.toExponential(2),
    });
  }

  /** Text the bar must not overwrite (evaluation, notes). */
  stop(): void {
    this.bar?.stop();
    this.bar = null;
  }
}
