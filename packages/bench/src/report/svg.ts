/**
 * Small, dependency-free SVG charts for benchmark reports: bars (with spread),
 * lines, and a per-stage timeline. Plain SVG 1.1 that any browser renders.
 */
const WIDTH = 720;
const HEIGHT = 360;
const MARGIN = { top: 40, right: 24, bottom: 64, left: 72 };
const MAX_X_TICKS = 12;
const PALETTE = ['#3b6ea5', '#e08a2e', '#4f9a57', '#c0504d', '#8064a2', '#4bacc6', '#9b7d3a'];

function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

function niceMax(value: number): number {
  if (!(value > 0)) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= value) return step * magnitude;
  return 10 * magnitude;
}

function formatTick(value: number): string {
  return Math.abs(value) >= 1000
    ? `${(value / 1000).toFixed(value % 1000 === 0 ? 0 : 1)}k`
    : String(Number(value.toPrecision(4)));
}

function frame(title: string, body: string[], yLabel: string, xLabel: string): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
    `<text transform="translate(16 ${HEIGHT / 2}) rotate(-90)" text-anchor="middle">${escapeXml(yLabel)}</text>`,
    `<text x="${MARGIN.left + (WIDTH - MARGIN.left - MARGIN.right) / 2}" y="${HEIGHT - 8}" text-anchor="middle">${escapeXml(xLabel)}</text>`,
    ...body,
    '</svg>',
  ].join('\n');
}

function yAxis(max: number, plotHeight: number): string[] {
  const out: string[] = [];
  for (let i = 0; i <= 5; i++) {
    const value = (max * i) / 5;
    const y = MARGIN.top + plotHeight - (plotHeight * i) / 5;
    out.push(
      `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y}" y2="${y}" stroke="#ddd"/>`,
    );
    out.push(
      `<text x="${MARGIN.left - 6}" y="${y + 4}" text-anchor="end">${formatTick(value)}</text>`,
    );
  }
  return out;
}

export interface Bar {
  label: string;
  value: number;
  /** Spread shown as a whisker, e.g. p5..p95. */
  low?: number;
  high?: number;
}

export function barChart(spec: {
  title: string;
  unit: string;
  xLabel?: string;
  bars: Bar[];
}): string {
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const max = niceMax(Math.max(...spec.bars.map((b) => Math.max(b.value, b.high ?? 0))));
  const slot = plotWidth / Math.max(1, spec.bars.length);
  const body = yAxis(max, plotHeight);
  const y = (v: number) => MARGIN.top + plotHeight - (plotHeight * v) / max;
  spec.bars.forEach((bar, i) => {
    const x = MARGIN.left + i * slot + slot * 0.15;
    const w = slot * 0.7;
    body.push(
      `<rect x="${x.toFixed(1)}" y="${y(bar.value).toFixed(1)}" width="${w.toFixed(1)}" height="${(MARGIN.top + plotHeight - y(bar.value)).toFixed(1)}" fill="${PALETTE[i % PALETTE.length]}"><title>${escapeXml(`${bar.label}: ${bar.value.toPrecision(4)} ${spec.unit}`)}</title></rect>`,
    );
    if (bar.low !== undefined && bar.high !== undefined) {
      const cx = (x + w / 2).toFixed(1);
      body.push(
        `<line x1="${cx}" x2="${cx}" y1="${y(bar.low).toFixed(1)}" y2="${y(bar.high).toFixed(1)}" stroke="black"/>`,
      );
    }
    body.push(
      `<text x="${(x + w / 2).toFixed(1)}" y="${(y(bar.value) - 4).toFixed(1)}" text-anchor="middle">${formatTick(bar.value)}</text>`,
    );
    body.push(
      `<text x="${(x + w / 2).toFixed(1)}" y="${MARGIN.top + plotHeight + 16}" text-anchor="middle">${escapeXml(bar.label)}</text>`,
    );
  });
  return frame(spec.title, body, spec.unit, spec.xLabel ?? '');
}

export interface Series {
  name: string;
  points: [number, number][];
}

export function lineChart(spec: {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
}): string {
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const xs = spec.series.flatMap((s) => s.points.map((p) => p[0]));
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs);
  const yMax = niceMax(Math.max(...spec.series.flatMap((s) => s.points.map((p) => p[1]))));
  const x = (v: number) =>
    MARGIN.left + (xMax === xMin ? plotWidth / 2 : ((v - xMin) / (xMax - xMin)) * plotWidth);
  const y = (v: number) => MARGIN.top + plotHeight - (plotHeight * v) / yMax;
  const body = yAxis(yMax, plotHeight);
  const distinct = [...new Set(xs)].sort((a, b) => a - b);
  // At most MAX_X_TICKS labels, evenly picked, so dense series stay legible; low
  // enough to clear the y axis's 0 at the corner.
  const every = Math.ceil(distinct.length / MAX_X_TICKS);
  for (const value of distinct.filter((_, i) => i % every === 0)) {
    body.push(
      `<text x="${x(value).toFixed(1)}" y="${MARGIN.top + plotHeight + 22}" text-anchor="middle">${formatTick(value)}</text>`,
    );
  }
  spec.series.forEach((series, i) => {
    const color = PALETTE[i % PALETTE.length];
    const path = series.points
      .map((p, j) => `${j === 0 ? 'M' : 'L'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`)
      .join(' ');
    body.push(`<path d="${path}" fill="none" stroke="${color}" stroke-width="2"/>`);
    for (const p of series.points)
      body.push(
        `<circle cx="${x(p[0]).toFixed(1)}" cy="${y(p[1]).toFixed(1)}" r="3" fill="${color}"/>`,
      );
    body.push(
      `<rect x="${MARGIN.left + 8}" y="${MARGIN.top + 4 + i * 16}" width="10" height="10" fill="${color}"/>`,
    );
    body.push(
      `<text x="${MARGIN.left + 22}" y="${MARGIN.top + 13 + i * 16}">${escapeXml(series.name)}</text>`,
    );
  });
  return frame(spec.title, body, spec.yLabel, spec.xLabel);
}

export interface TimelineSpan {
  start: number;
  end: number;
  kind: string;
}

/** Lanes of spans over time (ms): where each pipeline stage computes, sends or waits. */
export function timelineChart(spec: {
  title: string;
  lanes: { name: string; spans: TimelineSpan[] }[];
}): string {
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const all = spec.lanes.flatMap((l) => l.spans);
  const t0 = Math.min(...all.map((s) => s.start));
  const t1 = Math.max(...all.map((s) => s.end));
  const kinds = [...new Set(all.map((s) => s.kind))];
  const laneHeight = Math.min(
    40,
    (HEIGHT - MARGIN.top - MARGIN.bottom) / Math.max(1, spec.lanes.length),
  );
  const x = (v: number) => MARGIN.left + ((v - t0) / Math.max(1e-9, t1 - t0)) * plotWidth;
  const body: string[] = [];
  spec.lanes.forEach((lane, i) => {
    const top = MARGIN.top + i * laneHeight;
    body.push(
      `<text x="${MARGIN.left - 6}" y="${top + laneHeight / 2 + 4}" text-anchor="end">${escapeXml(lane.name)}</text>`,
    );
    for (const span of lane.spans) {
      const color = PALETTE[kinds.indexOf(span.kind) % PALETTE.length];
      body.push(
        `<rect x="${x(span.start).toFixed(2)}" y="${(top + 4).toFixed(1)}" width="${Math.max(0.5, x(span.end) - x(span.start)).toFixed(2)}" height="${(laneHeight - 8).toFixed(1)}" fill="${color}"><title>${escapeXml(`${span.kind} ${(span.end - span.start).toFixed(2)} ms`)}</title></rect>`,
      );
    }
  });
  kinds.forEach((kind, i) => {
    const lx = MARGIN.left + i * 110;
    body.push(
      `<rect x="${lx}" y="${HEIGHT - 44}" width="10" height="10" fill="${PALETTE[i % PALETTE.length]}"/>`,
    );
    body.push(`<text x="${lx + 14}" y="${HEIGHT - 35}">${escapeXml(kind)}</text>`);
  });
  for (let i = 0; i <= 4; i++) {
    const v = t0 + ((t1 - t0) * i) / 4;
    body.push(
      `<text x="${x(v).toFixed(1)}" y="${HEIGHT - 52}" text-anchor="middle">${(v - t0).toFixed(1)}</text>`,
    );
  }
  return frame(spec.title, body, '', 'time (ms)');
}
