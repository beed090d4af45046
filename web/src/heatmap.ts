/**
 * Maps over pictures on a canvas: the picture (pixelated when it is tiny, like Fashion-MNIST's 28 px),
 * and a small map of values in [0, 1] colored through the server's colormap table, upsampled smoothly
 * and blended on top.
 */
import type { Colormaps } from './api.js';

let colormaps: Colormaps | null = null;

export function setColormaps(c: Colormaps): void {
  colormaps = c;
}

export function loadImage(src: string): Promise<HTMLImageElement> {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error('the picture could not be decoded'));
    img.src = src;
  });
}

/**
 * A (rows, cols) map as a canvas of colored pixels, one per value: its range stretched over the
 * colormap ('minmax', as the library's attention overlays), or zero at the bottom ('zero', as the
 * saliency renderer, where zero means nothing there).
 */
function mapCanvas(
  values: readonly number[],
  rows: number,
  cols: number,
  colormap: keyof Colormaps,
  range: 'minmax' | 'zero',
): HTMLCanvasElement {
  const lut = colormaps?.[colormap];
  if (!lut) throw new Error('colormaps are not loaded');
  const canvas = document.createElement('canvas');
  canvas.width = cols;
  canvas.height = rows;
  const ctx = canvas.getContext('2d')!;
  const image = ctx.createImageData(cols, rows);
  let lo = range === 'zero' ? 0 : Infinity;
  let hi = 0;
  for (const v of values) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  for (let i = 0; i < rows * cols; i++) {
    const t = hi > lo ? Math.max(0, values[i] - lo) / (hi - lo) : 0;
    const [r, g, b] = lut[Math.min(255, Math.round(t * 255))];
    image.data.set([r, g, b, 255], 4 * i);
  }
  ctx.putImageData(image, 0, 0);
  return canvas;
}

export interface OverlayMap {
  values: readonly number[];
  rows: number;
  cols: number;
  /**
   * Input pixels per map value when a value sits on a pixel (the saliency map's samples sit at
   * (16 i, 16 j)); undefined when the map's cells tile the picture (ViT patches).
   */
  scale?: number;
  /** how values map to colors (default 'minmax') */
  range?: 'minmax' | 'zero';
}

/** Sizes the canvas to `width` CSS pixels (height from the picture), draws the picture and the map. */
export function drawOverlay(
  canvas: HTMLCanvasElement,
  picture: HTMLImageElement,
  map: OverlayMap | null,
  options: { width: number; alpha: number; colormap?: keyof Colormaps },
): void {
  const ratio = window.devicePixelRatio || 1;
  const cssWidth = options.width;
  const cssHeight = Math.round((cssWidth * picture.naturalHeight) / picture.naturalWidth);
  canvas.style.width = `${cssWidth}px`;
  canvas.style.height = `${cssHeight}px`;
  canvas.width = Math.round(cssWidth * ratio);
  canvas.height = Math.round(cssHeight * ratio);
  const ctx = canvas.getContext('2d')!;
  ctx.imageSmoothingEnabled = picture.naturalWidth >= 96;
  ctx.drawImage(picture, 0, 0, canvas.width, canvas.height);
  if (!map) return;
  const heat = mapCanvas(
    map.values,
    map.rows,
    map.cols,
    options.colormap ?? 'inferno',
    map.range ?? 'minmax',
  );
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.globalAlpha = options.alpha;
  if (map.scale === undefined) {
    ctx.drawImage(heat, 0, 0, canvas.width, canvas.height);
  } else {
    // Sample (i, j) is the center of a cell of `scale` input pixels around input pixel (scale i, scale j).
    // The last samples sit less than a cell from the far edges: stretch them to cover the picture.
    const k = canvas.width / picture.naturalWidth;
    const s = map.scale * k;
    const width = Math.max(map.cols * s, canvas.width + s / 2);
    const height = Math.max(map.rows * s, canvas.height + s / 2);
    ctx.drawImage(heat, -s / 2, -s / 2, width, height);
  }
  ctx.globalAlpha = 1;
}
