/** Every CLI subcommand; each module exports a function that adds itself to the program. */
import type { Command } from 'commander';
import { register as explain } from './explain.js';
import { register as classify } from './classify.js';
import { register as verify } from './verify.js';
import { register as train } from './train.js';
import { register as evaluate } from './eval.js';
import { register as stnDemo } from './stn.js';
import { register as saliency } from './saliency.js';
import { register as serve } from './serve.js';
import { register as detect } from './detect.js';
import { register as segment } from './segment.js';

export type RegisterCommand = (program: Command) => void;

export const commands: RegisterCommand[] = [
  classify,
  verify,
  explain,
  train,
  evaluate,
  saliency,
  stnDemo,
  detect,
  serve,
  segment,
];
