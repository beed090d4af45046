/** The `train` namespace: the training loop, checkpoints, EMA, logs and plots. */
export {
  checkpointProblems,
  readTrainingCheckpoint,
  restoreTrainingCheckpoint,
  saveTrainingCheckpoint,
  TRAIN_CHECKPOINT_FORMAT,
  type TrainingCheckpoint,
  type TrainPosition,
} from './checkpoint.js';
export { type EmaOptions, ModelEma } from './ema.js';
export { type EpochRecord, JsonlLog, type LogRecord, readLog, type StepRecord } from './log.js';
export { learningCurveSvg, lineChartSvg } from './plot.js';
export { TrainProgress } from './progress.js';
export {
  type ClassifierModule,
  type DistillableModule,
  type EvalResult,
  evaluate,
  type TrainOptions,
  type TrainParamGroup,
  type TrainResult,
  train,
} from './trainer.js';
