/**
 * The ViT paper's Fig. 7 as SVG: mean attention distance (pixels, y) per head against network
 * depth (layer, x), one dot per head, a color per head index.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../io/safetensors.js';
import { colorAt } from '../io/image.js';

export interface DistancePlotOptions {
  title?: string;
  /** Upper end of the y axis in pixels; default: the data's maximum rounded up to a tick. */
  yMax?: number;
  width?: number;
  height?: number;
}

function escapeXml(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A 'nice' tick step (1, 2 or 5 times a power of ten) giving about `count` intervals over [0, max]. */
function tickStep(max: number, count: number): number {
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}

/** SVG text of the plot for distances[layer][head] (as meanAttentionDistance returns them). */
export function attentionDistancePlot(
  distances: readonly (readonly number[])[],
  options: DistancePlotOptions = {},
): string {
  if (
    distances.length === 0 ||
    distances.some((row) => row.length === 0 || row.some((v) => !Number.isFinite(v)))
  ) {
    throw new Error(
      'attentionDistancePlot: expected distances[layer][head] with finite values for at least one layer and head',
    );
  }
  const width = options.width ?? 560;
  const height = options.height ?? 400;
  const title = options.title ?? 'Mean attention distance per head';
  const layers = distances.length;
  const heads = Math.max(...distances.map((row) => row.length));
  const dataMax = Math.max(...distances.flat());
  const step = tickStep(options.yMax ?? (dataMax > 0 ? dataMax : 1), 5);
  const yMax = options.yMax ?? Math.max(step, Math.ceil(dataMax / step) * step);
  const m = { left: 64, right: 96, top: 40, bottom: 52 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  // Depth is 1-based like the paper; half a layer of margin on each side.
  const x = (layer: number) => m.left + ((layer - 0.5) / layers) * plotW;
  const y = (v: number) => m.top + plotH - (Math.min(v, yMax) / yMax) * plotH;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${m.left + plotW / 2}" y="${m.top / 2 + 5}" text-anchor="middle" font-size="14">${escapeXml(title)}</text>`,
  );
  for (let v = 0; v <= yMax + 1e-9; v += step) {
    const yy = y(v).toFixed(1);
    parts.push(
      `<line x1="${m.left}" x2="${m.left + plotW}" y1="${yy}" y2="${yy}" stroke="#e5e5e5"/>`,
      `<text x="${m.left - 6}" y="${yy}" dy="4" text-anchor="end">${Number(v.toPrecision(6))}</text>`,
    );
  }
  const tickEvery = Math.ceil(layers / 12);
  for (let l = 1; l <= layers; l++) {
    if ((l - 1) % tickEvery !== 0 && l !== layers) continue;
    const xx = x(l).toFixed(1);
    parts.push(
      `<line x1="${xx}" x2="${xx}" y1="${m.top + plotH}" y2="${m.top + plotH + 4}" stroke="black"/>`,
      `<text x="${xx}" y="${m.top + plotH + 18}" text-anchor="middle">${l}</text>`,
    );
  }
  parts.push(
    `<rect x="${m.left}" y="${m.top}" width="${plotW}" height="${plotH}" fill="none" stroke="black"/>`,
    `<text x="${m.left + plotW / 2}" y="${height - 12}" text-anchor="middle">Network depth (layer)</text>`,
    `<text transform="translate(16 ${m.top + plotH / 2}) rotate(-90)" text-anchor="middle">Mean attention distance (pixels)</text>`,
  );
  const color = (h: number) => {
    const [r, g, b] = colorAt('viridis', heads > 1 ? h / (heads - 1) : 0.5);
    return `rgb(${r},${g},${b})`;
  };
  distances.forEach((row, l) => {
    row.forEach((v, h) => {
      parts.push(
        `<circle cx="${x(l + 1).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3.5" fill="${color(h)}" fill-opacity="0.85" stroke="black" stroke-width="0.4"><title>layer ${l + 1}, head ${h + 1}: ${v.toFixed(2)} px</title></circle>`,
      );
    });
  });
  const legendRows = Math.min(heads, 16);
  for (let h = 0; h < legendRows; h++) {
    const ly = m.top + 8 + h * 16;
    parts.push(
      `<circle cx="${m.left + plotW + 16}" cy="${ly}" r="4" fill="${color(h)}" stroke="black" stroke-width="0.4"/>`,
      `<text x="${m.left + plotW + 26}" y="${ly + 4}">head ${h + 1}</text>`,
    );
  }
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

/** Writes the plot as an SVG file (atomically, creating the folder). */
export function writeAttentionDistancePlot(
  path: string,
  distances: readonly (readonly number[])[],
  options: DistancePlotOptions = {},
): void {
  const svg = attentionDistancePlot(distances, options);
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomic(path, svg);
}
