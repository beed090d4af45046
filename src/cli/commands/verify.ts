/** glimpse verify FIXTURE_DIR NAME: parity of a zoo model with a peer fixture (timm, Hugging Face, torchvision). */
import type { Command } from 'commander';
import { verifyFixture } from '../../models/verify.js';
import { fmt } from '../../tensor/shape.js';

function exp(v: number): string {
  return Number.isFinite(v) ? v.toExponential(2) : String(v);
}

export function register(program: Command): void {
  program
    .command('verify')
    .description(
      'Build a model from a fixtures.json entry, load its checkpoint, compare outputs and attention maps',
    )
    .argument('<fixture-dir>', 'directory with fixtures.json, NAME.safetensors and NAME.io.safetensors')
    .argument('<name>', 'fixture name, e.g. timm_vit')
    .option('--json', 'print the result as JSON')
    .action((dir: string, name: string, options: { json?: boolean }) => {
      const r = verifyFixture(dir, name);
      if (options.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
      else {
        const dtypes = Object.entries(r.load.dtypes)
          .map(([d, n]) => `${n} ${d}`)
          .join(', ');
        process.stdout.write(`${name}: ${r.constructor}\n`);
        process.stdout.write(`weights: ${r.load.loaded} tensors (${dtypes}) with ${r.load.source} names\n`);
        for (const note of r.load.notes) process.stdout.write(`note: ${note}\n`);
        process.stdout.write(`tolerance: |a-b| <= ${r.tolerance} + ${r.tolerance}*|b|\n`);
        const width = Math.max(...r.comparisons.map((c) => c.what.length), 4);
        process.stdout.write(
          `${'what'.padEnd(width)}  ${'shape'.padEnd(18)}  max abs err  max rel err  ok\n`,
        );
        for (const c of r.comparisons) {
          process.stdout.write(
            `${c.what.padEnd(width)}  ${fmt(c.shape).padEnd(18)}  ${exp(c.maxAbs).padStart(11)}  ${exp(c.maxRel).padStart(11)}  ${c.ok ? 'ok' : 'FAIL'}\n`,
          );
        }
      }
      const failed = r.comparisons.filter((c) => !c.ok);
      if (failed.length > 0) {
        const w = failed.reduce((a, b) => (b.worst > a.worst ? b : a));
        throw new Error(
          `verify: ${name} differs from the reference beyond tolerance ${r.tolerance} in ${failed.length} of ${r.comparisons.length} checks (worst: ${w.what}, max abs err ${exp(w.maxAbs)})`,
        );
      }
      if (!options.json)
        process.stdout.write(`${name}: all ${r.comparisons.length} checks within tolerance\n`);
    });
}
