/**
 * Pictures of where a model looks: a map blended over its input image, and grids of maps (one row
 * per layer, one column per head) as PNG.
 */
import { type Colormap, heatmapRgb, overlayHeatmap, resizeRgb, writePngBytes } from '../io/image.js';
import { fmt } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { attentionDims, checkPrefix, resolveGrid, scaleToMax } from './attention.js';

export interface OverlayOptions {
  /** Heatmap weight in the blend (0 = image only). Default 0.55. */
  alpha?: number;
  colormap?: Colormap;
  /** Bicubic upsampling of the map (default) or visible patch blocks (false). */
  smooth?: boolean;
}

/** Blends a (gh, gw) map over a (3, H, W) image in [0, 1] and writes the PNG at the image's size. */
export async function writeOverlay(
  path: string,
  image: Tensor,
  map: Tensor,
  options: OverlayOptions = {},
): Promise<void> {
  const rgb = await overlayHeatmap(image, map, options);
  await writePngBytes(path, rgb.data, rgb.width, rgb.height);
}

/**
 * The raw attention of one source token (default the class token; 'mean' or prefixTokens 0: the mean
 * over query rows) over the patch tokens, for every layer and head of one image:
 * (L, heads, gh, gw), each map scaled to max 1.
 */
export function headMaps(
  attentions: readonly Tensor[],
  options: {
    prefixTokens?: number;
    tokenIndex?: number | 'mean';
    gridSize?: readonly [number, number];
    image?: number;
  } = {},
): Tensor {
  const fn = 'headMaps';
  const { batch, heads, tokens, layers } = attentionDims(fn, attentions);
  const prefixTokens = options.prefixTokens ?? 1;
  checkPrefix(fn, prefixTokens, tokens);
  const [gh, gw] = resolveGrid(fn, tokens - prefixTokens, options.gridSize);
  const image = options.image ?? 0;
  if (!Number.isInteger(image) || image < 0 || image >= batch) {
    throw new Error(`${fn}: image ${image} is outside the batch of ${batch}`);
  }
  const token = options.tokenIndex ?? (prefixTokens > 0 ? 0 : 'mean');
  if (token !== 'mean' && (!Number.isInteger(token) || token < 0 || token >= tokens)) {
    throw new Error(`${fn}: tokenIndex ${token} is outside the ${tokens} tokens`);
  }
  const rows = token === 'mean' ? Array.from({ length: tokens }, (_, q) => q) : [token];
  const patches = gh * gw;
  const out = new Float32Array(layers * heads * patches);
  attentions.forEach((attn, l) => {
    const a = attn.data as Float32Array;
    for (let h = 0; h < heads; h++) {
      const o = (l * heads + h) * patches;
      for (const q of rows) {
        const base = ((image * heads + h) * tokens + q) * tokens + prefixTokens;
        for (let k = 0; k < patches; k++) out[o + k] += a[base + k] / rows.length;
      }
      scaleToMax(out, o, patches);
    }
  });
  return new Tensor(out, [layers, heads, gh, gw]);
}

export interface GridOptions extends OverlayOptions {
  /** When given, every cell is the map blended over this (3, H, W) image; else the bare heatmap. */
  image?: Tensor;
  /** Cell width in pixels (the height follows the picture's aspect ratio). Default 96. */
  cellSize?: number;
  /** White gap between cells in pixels. Default 2. */
  gap?: number;
}

/** A (rows, cols, gh, gw) stack of maps as one RGB picture, row-major cells. */
export async function mapGrid(
  maps: Tensor,
  options: GridOptions = {},
): Promise<{ data: Uint8Array; width: number; height: number }> {
  if (maps.ndim !== 4) {
    throw new Error(
      `mapGrid: expected (rows, cols, gh, gw) maps (e.g. headMaps' (layers, heads, gh, gw)), got ${fmt(maps.shape)}`,
    );
  }
  const [rows, cols, gh, gw] = maps.shape;
  const cellW = options.cellSize ?? 96;
  // Cells keep the picture's aspect ratio: the image's when overlaid, else the grid's.
  const aspect = options.image ? options.image.shape[1] / options.image.shape[2] : gh / gw;
  const cellH = Math.max(1, Math.round(cellW * aspect));
  const gap = options.gap ?? 2;
  const width = cols * cellW + (cols + 1) * gap;
  const height = rows * cellH + (rows + 1) * gap;
  const out = new Uint8Array(3 * width * height).fill(255);
  const plane = gh * gw;
  const src = maps.data as Float32Array;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const offset = (r * cols + c) * plane;
      const map = new Tensor(src.slice(offset, offset + plane), [gh, gw]);
      // Bare heatmaps keep their patch blocks; overlays are already smooth at the image's size.
      const pixels = options.image
        ? await resizeRgb(await overlayHeatmap(options.image, map, options), cellW, cellH, 'linear')
        : await resizeRgb(heatmapRgb(map, options.colormap ?? 'inferno'), cellW, cellH, 'nearest');
      const x0 = gap + c * (cellW + gap);
      const y0 = gap + r * (cellH + gap);
      for (let y = 0; y < cellH; y++) {
        out.set(pixels.subarray(3 * y * cellW, 3 * (y + 1) * cellW), 3 * ((y0 + y) * width + x0));
      }
    }
  }
  return { data: out, width, height };
}

export async function writeMapGrid(path: string, maps: Tensor, options: GridOptions = {}): Promise<void> {
  const rgb = await mapGrid(maps, options);
  await writePngBytes(path, rgb.data, rgb.width, rgb.height);
}
