/**
 * Pictures of the model: maps as heatmaps over the image, the scanpath as numbered fixations joined
 * by lines (SVG composited by sharp), and a one-row panel with everything side by side.
 */
import sharp from 'sharp';
import { type Colormap, colorAt, toRgbBytes } from '../io/image.js';
import { Tensor } from '../tensor/tensor.js';
import { type Channel, type IttiResult, sampleBilinear } from './itti.js';
import type { Fixation } from './scanpath.js';

export interface RgbBytes {
  data: Uint8Array;
  width: number;
  height: number;
}

/** A saliency-scale (h, w) map resampled to (height, width) input pixels, aligned as the model is. */
export function upsampleMap(map: Tensor, width: number, height: number, scale: number): Tensor {
  const [h, w] = map.shape;
  const src = { data: Float32Array.from(map.data as ArrayLike<number>), h, w };
  return new Tensor(sampleBilinear(src, height, width, 1 / scale).data, [height, width]);
}

export interface MapStyle {
  colormap?: Colormap;
  /** The value drawn at the top of the colormap (default: the map's own maximum). */
  max?: number;
}

/** A map as an RGB heatmap at the input's size; zero is the bottom of the colormap. */
export function heatmap(result: IttiResult, map: Tensor, style: MapStyle = {}): RgbBytes {
  const { width, height, scale } = result;
  const up = upsampleMap(map, width, height, scale).data;
  let max = style.max ?? 0;
  if (style.max === undefined) for (const v of map.data) max = Math.max(max, v);
  const colormap = style.colormap ?? 'inferno';
  const out = new Uint8Array(3 * width * height);
  for (let i = 0; i < up.length; i++) out.set(colorAt(colormap, max > 0 ? up[i] / max : 0), 3 * i);
  return { data: out, width, height };
}

/** A map blended over the image (alpha: weight of the heatmap). */
export function overlay(
  image: Tensor,
  result: IttiResult,
  map: Tensor,
  style: MapStyle & { alpha?: number } = {},
) {
  const base = toRgbBytes(image);
  const heat = heatmap(result, map, style);
  const alpha = style.alpha ?? 0.6;
  const out = new Uint8Array(base.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.round((1 - alpha) * base.data[i] + alpha * heat.data[i]);
  return { data: out, width: base.width, height: base.height };
}

/** SVG of the scanpath: lines between consecutive fixations, IOR-sized circles, numbers 1..n. */
export function scanpathSvg(fixations: Fixation[], width: number, height: number, radius: number): string {
  const stroke = Math.max(1.5, Math.min(width, height) / 160);
  const font = Math.max(10, Math.min(width, height) / 18);
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">`];
  if (fixations.length > 1) {
    const points = fixations.map((f) => `${f.x.toFixed(1)},${f.y.toFixed(1)}`).join(' ');
    parts.push(
      `<polyline points="${points}" fill="none" stroke="#ffe14d" stroke-width="${stroke}" stroke-opacity="0.9"/>`,
    );
  }
  fixations.forEach((f, k) => {
    const color = k === 0 ? '#ff3b30' : '#ffe14d';
    parts.push(
      `<circle cx="${f.x.toFixed(1)}" cy="${f.y.toFixed(1)}" r="${radius.toFixed(1)}" fill="none" stroke="${color}" stroke-width="${stroke}"/>`,
      `<text x="${f.x.toFixed(1)}" y="${(f.y + font * 0.35).toFixed(1)}" font-family="DejaVu Sans, sans-serif" font-size="${font.toFixed(0)}" font-weight="bold" text-anchor="middle" fill="#fff" stroke="#000" stroke-width="${(font / 14).toFixed(2)}">${k + 1}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('');
}

/** Draws an SVG over RGB bytes; returns RGB bytes. */
async function drawSvg(base: RgbBytes, svg: string): Promise<RgbBytes> {
  const buf = await sharp(base.data, { raw: { width: base.width, height: base.height, channels: 3 } })
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
    .removeAlpha()
    .raw()
    .toBuffer();
  return {
    data: new Uint8Array(buf.buffer, buf.byteOffset, buf.length),
    width: base.width,
    height: base.height,
  };
}

/** The image with the scanpath drawn over it (radius: the IOR disk, in input pixels). */
export async function renderScanpath(
  image: Tensor,
  fixations: Fixation[],
  radius: number,
): Promise<RgbBytes> {
  const base = toRgbBytes(image);
  return drawSvg(base, scanpathSvg(fixations, base.width, base.height, radius));
}

const CHANNELS: Channel[] = ['intensity', 'color', 'orientation'];

/**
 * One row: scanpath over the image | saliency | the three conspicuity maps on one common scale, so
 * their brightness shows how much each channel contributes. Each tile is `tileHeight` high.
 */
export async function renderPanel(
  image: Tensor,
  result: IttiResult,
  fixations: Fixation[],
  radius: number,
  tileHeight = 256,
): Promise<RgbBytes> {
  let common = 0;
  for (const c of CHANNELS) for (const v of result.conspicuity[c].data) common = Math.max(common, v);
  const tiles: [string, RgbBytes][] = [
    ['scanpath', await renderScanpath(image, fixations, radius)],
    ['saliency', heatmap(result, result.saliency)],
    ...CHANNELS.map((c): [string, RgbBytes] => [c, heatmap(result, result.conspicuity[c], { max: common })]),
  ];
  const tileWidth = Math.max(1, Math.round((result.width / result.height) * tileHeight));
  const gap = 4;
  const width = tiles.length * tileWidth + (tiles.length - 1) * gap;
  const font = Math.max(10, Math.round(tileHeight / 16));
  const resized = await Promise.all(
    tiles.map(async ([, t]) =>
      sharp(t.data, { raw: { width: t.width, height: t.height, channels: 3 } })
        .resize(tileWidth, tileHeight, { fit: 'fill' })
        .png()
        .toBuffer(),
    ),
  );
  const labels = tiles
    .map(
      ([name], k) =>
        `<text x="${k * (tileWidth + gap) + 6}" y="${font + 4}" font-family="DejaVu Sans, sans-serif" font-size="${font}" fill="#fff" stroke="#000" stroke-width="${(font / 12).toFixed(2)}">${name}</text>`,
    )
    .join('');
  const buf = await sharp({ create: { width, height: tileHeight, channels: 3, background: '#ffffff' } })
    .composite([
      ...resized.map((input, k) => ({ input, top: 0, left: k * (tileWidth + gap) })),
      {
        input: Buffer.from(
          `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${tileHeight}">${labels}</svg>`,
        ),
        top: 0,
        left: 0,
      },
    ])
    .removeAlpha()
    .raw()
    .toBuffer();
  return { data: new Uint8Array(buf.buffer, buf.byteOffset, buf.length), width, height: tileHeight };
}
