/**
 * Visual search arrays (Treisman & Gelade 1980), the stimuli of the pop-out experiments: bars on a
 * jittered grid over a plain background, all alike but one. A feature singleton (odd color,
 * orientation or intensity) pops out; a conjunction target (odd only in its combination of color and
 * orientation) needs serial search. Seeded, so a test or a figure is reproducible.
 */
import { Generator } from '../ops/creation.js';
import { Tensor } from '../tensor/tensor.js';

export type Rgb = readonly [number, number, number];
export type SearchKind = 'color' | 'orientation' | 'intensity' | 'conjunction';
export const SEARCH_KINDS: readonly SearchKind[] = ['color', 'orientation', 'intensity', 'conjunction'];

/** How an item looks: its color and its orientation in degrees (0 horizontal, 90 vertical). */
export interface ItemLook {
  color: Rgb;
  orientation: number;
}

export interface SearchItem extends ItemLook {
  /** Center in pixels. */
  x: number;
  y: number;
  target: boolean;
}

export interface SearchArrayOptions {
  /** A preset: one odd item by color, orientation or intensity, or a color x orientation conjunction. */
  kind?: SearchKind;
  /** Explicit looks instead of a preset: distractors cycle through `distractors`, one item per target. */
  distractors?: ItemLook[];
  targets?: ItemLook[];
  /** Image side in pixels (default 256). */
  size?: number;
  /** Number of items, targets included (default: uniform in [20, 60]). */
  count?: number;
  seed?: number;
  /** Default black. */
  background?: Rgb;
}

export interface SearchArray {
  /** (3, size, size) in [0, 1]. */
  image: Tensor;
  items: SearchItem[];
  /** Indices into items of the targets. */
  targets: number[];
  /** Bar length in pixels (a fixation within it of a target's center is on the target). */
  itemSize: number;
}

// Equiluminant (r + g + b)/3 = 1/3, so a color singleton is not also an intensity singleton.
const RED: Rgb = [1, 0, 0];
const GREEN: Rgb = [0, 1, 0];
const GRAY: Rgb = [0.5, 0.5, 0.5];
const WHITE: Rgb = [1, 1, 1];

function preset(kind: SearchKind, rng: Generator): { distractors: ItemLook[]; targets: ItemLook[] } {
  const base = [0, 45, 90, 135][rng.int(0, 4)];
  const orthogonal = (base + 90) % 180;
  const [a, b] = rng.next() < 0.5 ? [RED, GREEN] : [GREEN, RED];
  switch (kind) {
    case 'color':
      return { distractors: [{ color: a, orientation: base }], targets: [{ color: b, orientation: base }] };
    case 'orientation': {
      const color = [RED, GREEN, WHITE][rng.int(0, 3)];
      return { distractors: [{ color, orientation: base }], targets: [{ color, orientation: orthogonal }] };
    }
    case 'intensity':
      return {
        distractors: [{ color: GRAY, orientation: base }],
        targets: [{ color: WHITE, orientation: base }],
      };
    case 'conjunction':
      return {
        distractors: [
          { color: a, orientation: base },
          { color: b, orientation: orthogonal },
        ],
        targets: [{ color: a, orientation: orthogonal }],
      };
    default:
      throw new Error(`searchArray: unknown kind '${kind}'; use one of ${SEARCH_KINDS.join(', ')}`);
  }
}

/** A seeded search array: a jittered grid of bars, distractors and targets at random cells. */
export function searchArray(opts: SearchArrayOptions): SearchArray {
  const size = opts.size ?? 256;
  const rng = new Generator(opts.seed ?? 0);
  const count = opts.count ?? rng.int(20, 61);
  const looks = opts.kind ? preset(opts.kind, rng) : { distractors: opts.distractors, targets: opts.targets };
  if (!looks.distractors?.length || !looks.targets?.length) {
    throw new Error(
      'searchArray: give a kind, or both distractors and targets (lists of { color, orientation })',
    );
  }
  const targetCount = looks.targets.length;
  if (!Number.isInteger(count) || count < targetCount + 1 || !(size >= 16)) {
    throw new Error(
      `searchArray: need size >= 16 and count > ${targetCount} targets, got size ${size}, count ${count}`,
    );
  }

  // A g x g grid with `count` of its cells used, each item jittered inside its cell; the grid keeps
  // a margin from the image border, as a display does.
  const grid = Math.ceil(Math.sqrt(count));
  const margin = 0.05 * size;
  const cell = (size - 2 * margin) / grid;
  const length = size * 0.07;
  const thickness = length / 3.5;
  const jitter = 0.7 * Math.max(0, (cell - length) / 2);
  const cells = rng.shuffle([...Array(grid * grid).keys()]).slice(0, count);
  const targetSlots = new Set(rng.shuffle([...Array(count).keys()]).slice(0, targetCount));
  const items: SearchItem[] = [];
  let t = 0;
  let d = 0;
  cells.forEach((c, slot) => {
    const isTarget = targetSlots.has(slot);
    const look = isTarget ? looks.targets![t++] : looks.distractors![d++ % looks.distractors!.length];
    items.push({
      x: margin + ((c % grid) + 0.5) * cell + (2 * rng.next() - 1) * jitter,
      y: margin + (Math.floor(c / grid) + 0.5) * cell + (2 * rng.next() - 1) * jitter,
      color: look.color,
      orientation: look.orientation,
      target: isTarget,
    });
  });

  const background = opts.background ?? [0, 0, 0];
  const plane = size * size;
  const pixels = new Float32Array(3 * plane);
  for (let k = 0; k < 3; k++) pixels.fill(background[k], k * plane, (k + 1) * plane);
  for (const item of items) drawBar(pixels, size, item, length, thickness);
  return {
    image: new Tensor(pixels, [3, size, size]),
    items,
    targets: items.flatMap((item, i) => (item.target ? [i] : [])),
    itemSize: length,
  };
}

/** An anti-aliased bar (4x4 supersampling), composited over what is there. */
function drawBar(
  pixels: Float32Array,
  size: number,
  item: SearchItem,
  length: number,
  thickness: number,
): void {
  const rad = (item.orientation * Math.PI) / 180;
  // Bar direction on screen (y down): (cos, -sin); across it: (sin, cos).
  const cos = Math.cos(rad);
  const sin = Math.sin(rad);
  const reach = Math.ceil(length / 2 + 1);
  const plane = size * size;
  const x0 = Math.max(0, Math.floor(item.x - reach));
  const x1 = Math.min(size - 1, Math.ceil(item.x + reach));
  const y0 = Math.max(0, Math.floor(item.y - reach));
  const y1 = Math.min(size - 1, Math.ceil(item.y + reach));
  for (let py = y0; py <= y1; py++) {
    for (let px = x0; px <= x1; px++) {
      let inside = 0;
      for (let sy = 0; sy < 4; sy++) {
        for (let sx = 0; sx < 4; sx++) {
          const dx = px + (sx + 0.5) / 4 - 0.5 - item.x;
          const dy = py + (sy + 0.5) / 4 - 0.5 - item.y;
          const along = dx * cos - dy * sin;
          const across = dx * sin + dy * cos;
          if (Math.abs(along) <= length / 2 && Math.abs(across) <= thickness / 2) inside++;
        }
      }
      if (inside === 0) continue;
      const coverage = inside / 16;
      const i = py * size + px;
      for (let k = 0; k < 3; k++) {
        pixels[k * plane + i] = (1 - coverage) * pixels[k * plane + i] + coverage * item.color[k];
      }
    }
  }
}

/** The item nearest to (x, y) and its distance: which item a fixation landed on. */
export function nearestItem(array: SearchArray, x: number, y: number): { index: number; distance: number } {
  let index = 0;
  let distance = Infinity;
  array.items.forEach((item, i) => {
    const dist = Math.hypot(item.x - x, item.y - y);
    if (dist < distance) {
      distance = dist;
      index = i;
    }
  });
  return { index, distance };
}
