/** Small SVG charts: lines and dots on linear axes with ticks, gridlines and a legend. */

const SVG = 'http://www.w3.org/2000/svg';

export function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number> = {},
  text?: string,
): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

export interface Series {
  name: string;
  color: string;
  points: Array<[number, number]>;
  line?: boolean;
  dots?: boolean;
  /** dot radius */
  radius?: number;
}

export interface ChartOptions {
  width?: number;
  height?: number;
  xLabel: string;
  yLabel: string;
  /** integer ticks on x (layers, epochs) */
  integerX?: boolean;
  yMin?: number;
  yMax?: number;
  /** how y tick values are printed */
  yFormat?: (v: number) => string;
}

/** Round tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten. */
function ticks(lo: number, hi: number, count: number): number[] {
  const span = hi - lo || 1;
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toFixed(10)));
  return out;
}

export function chart(series: Series[], o: ChartOptions): SVGSVGElement {
  const width = o.width ?? 420;
  const height = o.height ?? 260;
  const margin = { left: 52, right: 14, top: 28, bottom: 40 };
  const all = series.flatMap((s) => s.points);
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  if (o.integerX) [x0, x1] = [x0 - 0.5, x1 + 0.5];
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
  let y0 = o.yMin ?? Math.min(...ys);
  let y1 = o.yMax ?? Math.max(...ys);
  if (y0 === y1) [y0, y1] = [y0 - 1, y1 + 1];
  const pad = (y1 - y0) * 0.06;
  if (o.yMin === undefined) y0 -= pad;
  if (o.yMax === undefined) y1 += pad;
  const px = (x: number) => margin.left + ((x - x0) / (x1 - x0)) * (width - margin.left - margin.right);
  const py = (y: number) =>
    height - margin.bottom - ((y - y0) / (y1 - y0)) * (height - margin.top - margin.bottom);

  const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img' });
  const fmt = o.yFormat ?? ((v: number) => String(v));
  for (const t of ticks(y0, y1, 5)) {
    root.append(
      svg('line', { x1: margin.left, x2: width - margin.right, y1: py(t), y2: py(t), class: 'chart-grid' }),
    );
    root.append(
      svg('text', { x: margin.left - 6, y: py(t) + 4, class: 'chart-tick', 'text-anchor': 'end' }, fmt(t)),
    );
  }
  const xTicks = o.integerX
    ? ticks(Math.ceil(x0), Math.floor(x1), Math.min(12, Math.floor(x1) - Math.ceil(x0) + 1)).filter(
        Number.isInteger,
      )
    : ticks(x0, x1, 6);
  for (const t of xTicks) {
    root.append(
      svg(
        'text',
        { x: px(t), y: height - margin.bottom + 16, class: 'chart-tick', 'text-anchor': 'middle' },
        String(t),
      ),
    );
  }
  root.append(
    svg('line', {
      x1: margin.left,
      x2: width - margin.right,
      y1: height - margin.bottom,
      y2: height - margin.bottom,
      class: 'chart-axis',
    }),
    svg(
      'text',
      {
        x: (margin.left + width - margin.right) / 2,
        y: height - 6,
        class: 'chart-label',
        'text-anchor': 'middle',
      },
      o.xLabel,
    ),
    svg(
      'text',
      {
        x: 14,
        y: (margin.top + height - margin.bottom) / 2,
        class: 'chart-label',
        'text-anchor': 'middle',
        transform: `rotate(-90 14 ${(margin.top + height - margin.bottom) / 2})`,
      },
      o.yLabel,
    ),
  );
  let legendX = margin.left;
  for (const s of series) {
    if (s.line !== false && s.points.length > 1) {
      const d = s.points
        .map((p, i) => `${i ? 'L' : 'M'}${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`)
        .join('');
      root.append(svg('path', { d, fill: 'none', stroke: s.color, 'stroke-width': 2 }));
    }
    if (s.dots) {
      for (const [x, y] of s.points) {
        root.append(
          svg('circle', { cx: px(x), cy: py(y), r: s.radius ?? 3.5, fill: s.color, 'fill-opacity': 0.75 }),
        );
      }
    }
    root.append(
      svg('rect', { x: legendX, y: 8, width: 10, height: 10, rx: 2, fill: s.color }),
      svg('text', { x: legendX + 14, y: 17, class: 'chart-legend' }, s.name),
    );
    legendX += 22 + s.name.length * 6.4;
  }
  return root;
}
