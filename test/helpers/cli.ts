import { main } from '../../src/cli/main.js';

/** Runs the glimpse CLI in-process, capturing what it writes to stdout and stderr. */
export async function runCli(args: string[]): Promise<{ code: number; err: string; out: string }> {
  let err = '';
  let out = '';
  const writeErr = process.stderr.write.bind(process.stderr);
  const writeOut = process.stdout.write.bind(process.stdout);
  process.stderr.write = ((s: string) => {
    err += s;
    return true;
  }) as typeof process.stderr.write;
  process.stdout.write = ((s: string) => {
    out += s;
    return true;
  }) as typeof process.stdout.write;
  try {
    return { code: await main(args), err, out };
  } finally {
    process.stderr.write = writeErr;
    process.stdout.write = writeOut;
  }
}
