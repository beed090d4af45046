/** Every CLI subcommand; each module exports a function that adds itself to the program. */
import type { Command } from 'commander';

export type RegisterCommand = (program: Command) => void;

export const commands: RegisterCommand[] = [];
