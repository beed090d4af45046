/**
 * The saliency model's scanpath drawn over its picture: fixations appear one after the other (the
 * winner-take-all order), joined by a line that grows from each to the next.
 */
import type { SaliencyResult } from './api.js';
import { svg } from './charts.js';

/** Seconds between two fixations on screen. */
const STEP = 0.7;

export function drawScanpath(root: SVGSVGElement, result: SaliencyResult): void {
  const { width, height, fixations, iorRadius } = result;
  root.replaceChildren();
  root.setAttribute('viewBox', `0 0 ${width} ${height}`);
  const stroke = Math.max(1.5, Math.min(width, height) / 150);
  const font = Math.max(11, Math.min(width, height) / 16);
  fixations.forEach((f, k) => {
    const delay = 0.3 + k * STEP;
    const next = fixations[k + 1];
    if (next) {
      const length = Math.hypot(next.x - f.x, next.y - f.y);
      const line = svg('line', {
        x1: f.x,
        y1: f.y,
        x2: next.x,
        y2: next.y,
        class: 'saccade',
        'stroke-width': stroke,
        'stroke-dasharray': length,
        'stroke-dashoffset': length,
      });
      line.style.animationDelay = `${delay + 0.25}s`;
      line.style.setProperty('--length', String(length));
      root.append(line);
    }
    const group = svg('g', { class: `fixation${k === 0 ? ' first' : ''}` });
    group.style.animationDelay = `${delay}s`;
    group.append(
      svg('circle', { cx: f.x, cy: f.y, r: iorRadius, 'stroke-width': stroke }),
      svg(
        'text',
        { x: f.x, y: f.y + font * 0.35, 'font-size': font, 'text-anchor': 'middle' },
        String(k + 1),
      ),
    );
    root.append(group);
  });
}
