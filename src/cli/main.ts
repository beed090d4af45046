/**
 * The CLI: a thin shell over the library. Each subcommand lives in cli/commands/<name>.ts and is
 * listed in cli/commands/index.ts. Errors print one line (what is wrong and what to do) and exit 1.
 */
import { Command, CommanderError } from 'commander';
// The native backend when its addon loads (js otherwise, with one warning): training and inference speed.
import '../backend/native.js';
import { commands } from './commands/index.js';

export async function main(argv: string[]): Promise<number> {
  const program = new Command('glimpse')
    .description('Attention and transformers for images: see where models look.')
    .showHelpAfterError('(run glimpse --help for usage)')
    .exitOverride();
  for (const register of commands) register(program);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    const message = e instanceof Error ? e.message : String(e);
    process.stderr.write(`glimpse: ${message.split('\n')[0]}\n`);
    if (process.env.GLIMPSE_DEBUG) console.error(e);
    return 1;
  }
}
