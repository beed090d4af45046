import { main } from '../../src/cli/main.js';

/**
 * Runs the glimpse CLI in-process, capturing what it writes to stderr and, when asked, stdout. Ask
 * only when the test reads `out`: node:test's runner reports through the same stdout, and a report
 * written while it is captured is lost (the test then goes uncounted).
 */
export async function runCli(
  args: string[],
  captureStdout = false,
): Promise<{ code: number; err: string; out: string }> {
  let err = '';
  let out = '';
  const writeErr = process.stderr.write.bind(process.stderr);
  const writeOut = process.stdout.write.bind(process.stdout);
  process.stderr.write = ((s: string) => {
    err += s;
    return true;
  }) as typeof process.stderr.write;
  if (captureStdout) {
    process.stdout.write = ((s: string) => {
      out += s;
      return true;
    }) as typeof process.stdout.write;
  }
  try {
    return { code: await main(args), err, out };
  } finally {
    process.stderr.write = writeErr;
    process.stdout.write = writeOut;
  }
}
