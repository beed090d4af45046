/**
 * Winner-take-all with inhibition of return (Itti, Koch & Niebur 1998, section 2.3): the saliency
 * map drives a layer of leaky integrate-and-fire neurons; the first to reach threshold is the focus
 * of attention, every neuron is reset, and the attended disk is inhibited so attention moves on.
 *
 * The race is solved in closed form instead of simulated: a neuron with constant input u charges as
 * V(t) = u (1 - e^{-t/τ}), so the largest input always fires first (the argmax), after
 * t = τ ln(u / (u - θ)). Inputs are relative to the first winner; one that never exceeds θ never
 * fires, which is where the scanpath ends.
 */
import type { Tensor } from '../tensor/tensor.js';
import { type Channel, type IttiResult, MAP_LEVEL } from './itti.js';

export interface ScanpathOptions {
  /** How many fixations at most (default 5). */
  fixations?: number;
  /** Radius of the inhibited disk in input pixels (default: defaultIorRadius(width, height)). */
  iorRadius?: number;
  /** Membrane time constant of the WTA neurons in ms (default 500). */
  tauMs?: number;
  /** Firing threshold as a fraction of the first winner's input (default 0.05). */
  threshold?: number;
}

export interface Fixation {
  /** Input-image pixels. */
  x: number;
  y: number;
  /** ms after stimulus onset at which this location won. */
  t: number;
  /** The channel that contributed most to the saliency here. */
  feature: Channel;
  /** The sub-channel that contributed most within that channel, e.g. 'color.RG', 'orientation.90'. */
  map: string;
  /** The saliency map's value at the winner, before any inhibition. */
  saliency: number;
  /** Each channel's term of S at the winner (S is their mean). */
  contributions: Record<Channel, number>;
}

const CHANNELS: Channel[] = ['intensity', 'color', 'orientation'];

/**
 * The inhibited disk follows the image size: a sixth of the shorter side, about one object of a
 * scene, so that the next fixation leaves the object just attended rather than sliding along it;
 * never less than 1.5 saliency-map pixels, so that on small images the winner's neighbours, which
 * hold the same blob at the map's resolution, are inhibited with it.
 */
export function defaultIorRadius(width: number, height: number): number {
  return Math.max(Math.min(width, height) / 6, 1.5 * 2 ** MAP_LEVEL);
}

/** Vertex offset of the parabola through (-1, a), (0, b), (1, c), within half a pixel. */
function parabolaPeak(a: number, b: number, c: number): number {
  const curvature = a - 2 * b + c;
  if (!(curvature < 0)) return 0;
  return Math.max(-0.5, Math.min(0.5, (a - c) / (2 * curvature)));
}

/** The ordered fixations of the WTA/IOR loop over an ittiSaliency result, first fixation first. */
export function scanpath(result: IttiResult, opts: ScanpathOptions = {}): Fixation[] {
  const count = opts.fixations ?? 5;
  const tau = opts.tauMs ?? 500;
  const threshold = opts.threshold ?? 0.05;
  const { width, height, scale } = result;
  const radius = opts.iorRadius ?? defaultIorRadius(width, height);
  if (!Number.isInteger(count) || count < 0) {
    throw new Error(`scanpath: fixations must be a non-negative integer, got ${count}`);
  }
  if (!(tau > 0) || !(threshold > 0 && threshold < 1) || !(radius >= 0)) {
    throw new Error(
      `scanpath: need tauMs > 0, 0 < threshold < 1 and iorRadius >= 0, got ${tau}, ${threshold}, ${radius}`,
    );
  }
  const [h, w] = result.saliency.shape;
  const original = result.saliency.data as Float32Array;
  const input = Float32Array.from(original);
  const at = (t: Tensor, i: number) => Number(t.data[i]);

  const fixations: Fixation[] = [];
  let first = 0;
  let time = 0;
  while (fixations.length < count) {
    let best = 0;
    for (let i = 1; i < input.length; i++) if (input[i] > input[best]) best = i;
    const value = input[best];
    if (fixations.length === 0) first = value;
    const u = first > 0 ? value / first : 0;
    if (!(u > threshold)) break;
    time += tau * Math.log(u / (u - threshold));

    const i = Math.floor(best / w);
    const j = best % w;
    // Sub-pixel position from the parabola through the winner and its two neighbours, where both exist.
    const v = (ii: number, jj: number) => original[ii * w + jj];
    const di = i > 0 && i < h - 1 ? parabolaPeak(v(i - 1, j), v(i, j), v(i + 1, j)) : 0;
    const dj = j > 0 && j < w - 1 ? parabolaPeak(v(i, j - 1), v(i, j), v(i, j + 1)) : 0;
    const x = Math.max(0, Math.min(width - 1, (j + dj) * scale));
    const y = Math.max(0, Math.min(height - 1, (i + di) * scale));

    const contributions = Object.fromEntries(
      CHANNELS.map((c) => [c, at(result.conspicuity[c], best)]),
    ) as Record<Channel, number>;
    const feature = CHANNELS.reduce((a, c) => (contributions[c] > contributions[a] ? c : a));
    const candidates = Object.keys(result.features).filter((k) => k.split('.')[0] === feature);
    const map = candidates.reduce((a, k) =>
      at(result.features[k], best) > at(result.features[a], best) ? k : a,
    );
    fixations.push({ x, y, t: time, feature, map, saliency: original[best], contributions });

    // Inhibition of return: the disk around the attended location (saliency pixel (ii, jj) sits on
    // input pixel (ii·scale, jj·scale)); the winner itself always, however small the radius.
    input[best] = 0;
    for (let ii = 0; ii < h; ii++) {
      for (let jj = 0; jj < w; jj++) {
        if ((ii * scale - y) ** 2 + (jj * scale - x) ** 2 <= radius * radius) input[ii * w + jj] = 0;
      }
    }
  }
  return fixations;
}
