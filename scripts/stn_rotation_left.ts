/**
 * Where each class's items end up turned: the rotation left in a trained stn-demo model's outputs,
 * per test image, as per-class histograms next to the input's own rotation (docs/stn/README.md).
 *
 *   node --import tsx scripts/stn_rotation_left.ts <dir> [--model st-series] [--svg out.svg]
 *
 * <dir> is an stn-demo output folder (results.json and <model>.safetensors). Prints a table of
 * 10-degree bins per class and, with --svg, draws them: grey the input's turn, blue what is left.
 */
import {
  type DemoModel,
  loadDemoModel,
  rotationLeft,
  thetasOf,
  transformersOf,
} from '../src/cli/commands/stn.js';
import { loadDistortedFashionMnist } from '../src/data/distorted_fashion_mnist.js';
import { writeFileAtomic } from '../src/io/safetensors.js';

const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const dir = args[0];
if (!dir || dir.startsWith('--')) {
  console.error(
    'usage: node --import tsx scripts/stn_rotation_left.ts <stn-demo output dir> [--model st-series] [--svg out.svg]',
  );
  process.exit(2);
}
const kind = (flag('--model') ?? 'st-series') as DemoModel;
const { model, settings: o } = loadDemoModel(dir, kind);
const test = await loadDistortedFashionMnist('test', {
  canvas: o.canvas,
  clutter: o.clutter,
  limit: o.testSize,
  seed: o.seed + 1,
});
const indices = Array.from({ length: test.length }, (_, i) => i);
const thetas = thetasOf(transformersOf(model, test, indices)[0]);
const BINS = 18; // 10 degrees each, -90..90, the ends clamped
const bin = (a: number) => Math.min(BINS - 1, Math.max(0, Math.floor((a + 90) / 10)));
const within = test.classes.map(() => [0, 0]); // |left| < 10 degrees, all
const before = test.classes.map(() => new Array<number>(BINS).fill(0));
const after = test.classes.map(() => new Array<number>(BINS).fill(0));
indices.forEach((i, b) => {
  const d = test.distortion(i);
  const k = test.label(i);
  before[k][bin(d.angle)]++;
  const left = rotationLeft(thetas[b], d.angle);
  after[k][bin(left)]++;
  within[k][0] += Math.abs(left) < 10 ? 1 : 0;
  within[k][1]++;
});
console.log(
  `rotation left per class, ${test.length} test images, 10-degree bins from -90 to 90 (ends clamped)`,
);
test.classes.forEach((c, k) => {
  const share = `${((100 * within[k][0]) / within[k][1]).toFixed(0)}% within 10 deg`;
  console.log(`${c.padEnd(12)} ${after[k].map((v) => String(v).padStart(4)).join('')}   ${share}`);
});

const svgPath = flag('--svg');
if (svgPath) {
  const [cw, ch, pad, cols] = [190, 110, 24, 5];
  const rows = Math.ceil(test.classes.length / cols);
  const width = cols * cw + pad;
  const height = rows * ch + pad + 20;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="DejaVu Sans, sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${pad}" y="16" font-size="12">rotation per test image, degrees: grey = input, blue = left after the transformer (${kind})</text>`,
  ];
  test.classes.forEach((c, k) => {
    const x0 = pad + (k % cols) * cw;
    const y0 = 30 + Math.floor(k / cols) * ch;
    const [pw, ph] = [cw - 20, ch - 36];
    const top = Math.max(...before[k], ...after[k], 1);
    const bw = pw / BINS;
    parts.push(`<text x="${x0}" y="${y0 + 10}">${c}</text>`);
    for (let j = 0; j < BINS; j++) {
      const hb = (before[k][j] / top) * ph;
      const ha = (after[k][j] / top) * ph;
      const x = x0 + j * bw;
      parts.push(
        `<rect x="${x.toFixed(1)}" y="${(y0 + 16 + ph - hb).toFixed(1)}" width="${(bw - 1).toFixed(1)}" height="${hb.toFixed(1)}" fill="#bbbbbb"/>`,
      );
      parts.push(
        `<rect x="${(x + bw * 0.25).toFixed(1)}" y="${(y0 + 16 + ph - ha).toFixed(1)}" width="${(bw * 0.5).toFixed(1)}" height="${ha.toFixed(1)}" fill="#1f6fb4"/>`,
      );
    }
    const axis = y0 + 16 + ph;
    parts.push(`<line x1="${x0}" y1="${axis}" x2="${x0 + pw}" y2="${axis}" stroke="black"/>`);
    for (const t of [-90, -45, 0, 45, 90]) {
      const x = x0 + ((t + 90) / 180) * pw;
      parts.push(`<line x1="${x}" y1="${axis}" x2="${x}" y2="${axis + 3}" stroke="black"/>`);
      parts.push(`<text x="${x}" y="${axis + 14}" text-anchor="middle" font-size="9">${t}</text>`);
    }
  });
  parts.push('</svg>');
  writeFileAtomic(svgPath, `${parts.join('\n')}\n`);
  console.log(`figure: ${svgPath}`);
}
