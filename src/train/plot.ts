/**
 * The learning-curve plot: loss and accuracy per epoch as an SVG (two panels, train and eval
 * series, EMA when present), written next to the log after every epoch.
 */
import type { EpochRecord } from './log.js';

export interface Series {
  label: string;
  color: string;
  points: Array<[number, number]>;
  dashed?: boolean;
}

const W = 360;
const H = 240;
const M = { left: 52, right: 24, top: 28, bottom: 40 };

function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (hi <= lo) hi = lo + 1;
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step)
    ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

interface PanelOptions {
  title: string;
  xLabel: string;
  /**
   * The corner the curves are least likely to cross (top-right for falling loss, bottom-right for
   * rising accuracy), or 'right': beside the plot, for long labels.
   */
  legend: 'top' | 'bottom' | 'right';
  yRange?: [number, number];
  /** Logarithmic x axis with ticks at the data's x values (training-set sizes). */
  logX?: boolean;
}

function panel(series: Series[], xOffset: number, options: PanelOptions): string {
  const { title, xLabel, legend, yRange, logX = false } = options;
  const tx = (x: number) => (logX ? Math.log10(x) : x);
  const all = series.flatMap((s) => s.points.map(([x, y]) => [tx(x), y] as [number, number]));
  if (all.length === 0) return '';
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const x0 = Math.min(...xs);
  const x1 = Math.max(Math.max(...xs), x0 + 1);
  let [y0, y1] = yRange ?? [Math.min(...ys), Math.max(...ys)];
  if (!yRange) {
    const pad = (y1 - y0) * 0.08 || Math.abs(y1) * 0.1 || 0.1;
    y0 -= pad;
    y1 += pad;
  }
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const sx = (x: number) => xOffset + M.left + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => M.top + (1 - (y - y0) / (y1 - y0)) * ph;
  const parts: string[] = [];
  parts.push(
    `<text x="${xOffset + M.left + pw / 2}" y="18" text-anchor="middle" font-weight="bold">${esc(title)}</text>`,
  );
  parts.push(
    `<rect x="${xOffset + M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`,
  );
  for (const t of niceTicks(y0, y1)) {
    if (t < y0 || t > y1) continue;
    parts.push(
      `<line x1="${xOffset + M.left}" x2="${xOffset + M.left + pw}" y1="${sy(t)}" y2="${sy(t)}" stroke="#eee"/>`,
    );
    parts.push(`<text x="${xOffset + M.left - 4}" y="${sy(t) + 4}" text-anchor="end">${t}</text>`);
  }
  const xTicks = logX
    ? [...new Set(series.flatMap((s) => s.points.map((p) => p[0])))].map((v) => [tx(v), v])
    : niceTicks(x0, x1, 6)
        .filter((v) => Number.isInteger(v))
        .map((v) => [v, v]);
  for (const [t, label] of xTicks) {
    if (t < x0 || t > x1) continue;
    parts.push(`<text x="${sx(t)}" y="${M.top + ph + 16}" text-anchor="middle">${label}</text>`);
  }
  parts.push(
    `<text x="${xOffset + M.left + pw / 2}" y="${H - 6}" text-anchor="middle">${esc(xLabel)}</text>`,
  );
  series.forEach((s, i) => {
    if (s.points.length === 0) return;
    const d = s.points
      .map(([x, y], j) => `${j ? 'L' : 'M'}${sx(tx(x)).toFixed(1)},${sy(y).toFixed(1)}`)
      .join(' ');
    const dash = s.dashed ? ' stroke-dasharray="5,3"' : '';
    parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${dash}/>`);
    for (const [x, y] of s.points)
      parts.push(`<circle cx="${sx(tx(x)).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${s.color}"/>`);
    const ly = legend === 'bottom' ? M.top + ph - 8 - 15 * (series.length - 1 - i) : M.top + 14 + 15 * i;
    const lx = legend === 'right' ? xOffset + M.left + pw + 14 : xOffset + M.left + pw - 100;
    parts.push(
      `<line x1="${lx}" x2="${lx + 18}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${dash}/>`,
    );
    parts.push(`<text x="${lx + 22}" y="${ly}">${esc(s.label)}</text>`);
  });
  return parts.join('\n');
}

/** An SVG with loss (left) and top-1 accuracy (right) against the epoch (1-based). */
export function learningCurveSvg(records: readonly EpochRecord[], title = 'training'): string {
  const series = (key: keyof EpochRecord, label: string, color: string, dashed = false): Series => ({
    label,
    color,
    dashed,
    points: records.filter((r) => typeof r[key] === 'number').map((r) => [r.epoch + 1, r[key] as number]),
  });
  const loss = [series('train_loss', 'train', '#1f77b4'), series('eval_loss', 'eval', '#d62728')].filter(
    (s) => s.points.length,
  );
  const acc = [
    series('train_acc', 'train', '#1f77b4'),
    series('eval_acc', 'eval', '#d62728'),
    series('eval_ema_acc', 'eval (EMA)', '#2ca02c', true),
  ].filter((s) => s.points.length);
  const accValues = acc.flatMap((s) => s.points.map((p) => p[1]));
  const accLo = accValues.length ? Math.max(0, Math.floor(Math.min(...accValues) * 10) / 10) : 0;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${H + 20}" font-family="sans-serif" font-size="11">`,
    `<title>${esc(title)}</title>`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${W}" y="${H + 14}" text-anchor="middle" fill="#555">${esc(title)}</text>`,
    panel(loss, 0, { title: 'loss', xLabel: 'epoch', legend: 'top' }),
    panel(acc, W, { title: 'top-1 accuracy', xLabel: 'epoch', legend: 'bottom', yRange: [accLo, 1] }),
    '</svg>',
    '',
  ].join('\n');
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];

/** One line chart (e.g. test accuracy against training-set size, log x) as an SVG. */
export function lineChartSvg(
  series: ReadonlyArray<{ label: string; points: Array<[number, number]> }>,
  options: {
    title: string;
    xLabel: string;
    logX?: boolean;
    yRange?: [number, number];
    /** Default 'right': the legend beside the plot, the SVG widened to fit the longest label. */
    legend?: 'top' | 'bottom' | 'right';
  },
): string {
  const colored = series.map((s, i) => ({ ...s, color: PALETTE[i % PALETTE.length] }));
  const legend = options.legend ?? 'right';
  // ~6.5 px per character at font-size 11, plus the swatch
  const legendWidth = legend === 'right' ? 40 + 6.5 * Math.max(0, ...series.map((s) => s.label.length)) : 0;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${Math.ceil(W + legendWidth)}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<title>${esc(options.title)}</title>`,
    `<rect width="100%" height="100%" fill="white"/>`,
    panel(colored, 0, { ...options, legend }),
    '</svg>',
    '',
  ].join('\n');
}
