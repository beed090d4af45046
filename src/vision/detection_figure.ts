/**
 * Detection figures: the image with its boxes and labels, then one panel per detection with the
 * attention map of the query that produced it laid over the image (the DETR paper's per-object
 * decoder attention figure). Panels are upscaled with nearest neighbours so small inputs stay
 * legible; the figure is composed as SVG and rasterized to PNG by sharp.
 */
import sharp from 'sharp';
import { encodePng, overlayHeatmap, toRgbBytes } from '../io/image.js';
import { fmt } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';

export interface FigureDetection {
  /** (x1, y1, x2, y2) in image pixels. */
  box: readonly [number, number, number, number];
  label: string;
  score: number;
  /** (h, w) attention of the detection's query over the feature map, drawn in its panel. */
  attention?: Tensor;
}

export interface DetectionFigureOptions {
  /** Upscaling of every panel (default: the image's longer side becomes ~256 pixels). */
  scale?: number;
  /** Heatmap opacity over the image in attention panels (default 0.6). */
  alpha?: number;
  /** At most this many attention panels, highest scores first (default 8). */
  maxPanels?: number;
}

/** Distinct box colors (Sasha Trubetskoy's list), cycling by detection. */
export const BOX_COLORS = [
  '#e6194b',
  '#3cb44b',
  '#4363d8',
  '#f58231',
  '#911eb4',
  '#42d4f4',
  '#f032e6',
  '#bfef45',
  '#ffe119',
  '#469990',
];

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function upscale(rgb: { data: Uint8Array; width: number; height: number }, s: number): Uint8Array {
  const w = rgb.width * s;
  const out = new Uint8Array(3 * w * rgb.height * s);
  for (let y = 0; y < rgb.height * s; y++) {
    for (let x = 0; x < w; x++) {
      const src = 3 * (Math.floor(y / s) * rgb.width + Math.floor(x / s));
      out.set(rgb.data.subarray(src, src + 3), 3 * (y * w + x));
    }
  }
  return out;
}

async function panelPng(
  rgb: { data: Uint8Array; width: number; height: number },
  s: number,
): Promise<string> {
  const png = await encodePng(upscale(rgb, s), rgb.width * s, rgb.height * s);
  return `data:image/png;base64,${Buffer.from(png).toString('base64')}`;
}

/** PNG bytes of the figure for one image (3, H, W) or (1, H, W) in [0, 1]. */
export async function detectionFigure(
  image: Tensor,
  detections: readonly FigureDetection[],
  options: DetectionFigureOptions = {},
): Promise<Uint8Array> {
  if (image.ndim !== 3 || (image.shape[0] !== 1 && image.shape[0] !== 3)) {
    throw new Error(`detectionFigure: expected a (3, H, W) or (1, H, W) image, got ${fmt(image.shape)}`);
  }
  const [, h, w] = image.shape;
  const s = options.scale ?? Math.max(1, Math.round(256 / Math.max(h, w)));
  const pw = w * s;
  const ph = h * s;
  const title = 22;
  const gap = 8;
  const shown = [...detections].sort((a, b) => b.score - a.score);
  const panels = shown.filter((d) => d.attention).slice(0, options.maxPanels ?? 8);
  const width = (1 + panels.length) * (pw + gap) + gap;
  const height = ph + title + 2 * gap;
  const rect = (d: FigureDetection, i: number, ox: number) => {
    const [x1, y1, x2, y2] = d.box.map((v) => v * s);
    return `<rect x="${ox + x1}" y="${title + gap + y1}" width="${Math.max(0, x2 - x1)}" height="${Math.max(0, y2 - y1)}" fill="none" stroke="${BOX_COLORS[i % BOX_COLORS.length]}" stroke-width="2"/>`;
  };
  const text = (x: number, y: number, body: string, color = '#222') =>
    `<text x="${x}" y="${y}" font-family="sans-serif" font-size="13" fill="${color}">${escapeXml(body)}</text>`;
  const parts: string[] = [
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<image href="${await panelPng(toRgbBytes(image), s)}" x="${gap}" y="${title + gap}" width="${pw}" height="${ph}"/>`,
    text(gap, title - 4, `${detections.length} detection${detections.length === 1 ? '' : 's'}`),
  ];
  shown.forEach((d, i) => {
    parts.push(rect(d, i, gap));
    const [x1, y1] = d.box.map((v) => v * s);
    parts.push(
      text(
        gap + x1 + 2,
        title + gap + Math.max(12, y1 - 3),
        `${d.label} ${d.score.toFixed(2)}`,
        BOX_COLORS[i % BOX_COLORS.length],
      ),
    );
  });
  for (const [k, d] of panels.entries()) {
    const ox = gap + (k + 1) * (pw + gap);
    const overlay = await overlayHeatmap(image, d.attention as Tensor, {
      alpha: options.alpha ?? 0.6,
      smooth: false,
    });
    parts.push(
      `<image href="${await panelPng(overlay, s)}" x="${ox}" y="${title + gap}" width="${pw}" height="${ph}"/>`,
    );
    parts.push(rect(d, shown.indexOf(d), ox));
    parts.push(
      text(
        ox,
        title - 4,
        `${d.label} ${d.score.toFixed(2)}`,
        BOX_COLORS[shown.indexOf(d) % BOX_COLORS.length],
      ),
    );
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`;
  const buf = await sharp(Buffer.from(svg)).png().toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}
