/**
 * Live pipeline: per-stage utilisation, queue, forward time and bytes/s; the cluster's
 * tokens/s; the stage timeline of the last seconds as lanes (wait, compute, send); and
 * failover as it happens.
 */
import { getJson } from './api.js';
import type { ClusterState, MetricsEvent } from './cluster-state.js';
import { bytes, fixed, h, s, show, table } from './dom.js';

/** How much recent time the timeline shows, ms. */
export const TIMELINE_WINDOW_MS = 5000;
/** How often the timeline is fetched while the pipeline view is open, ms. */
export const TIMELINE_REFRESH_MS = 2000;

interface StageEvent {
  batchId: number;
  rows: number;
  arrivedAt: number;
  computeStart: number;
  computeEnd: number;
  sentAt: number;
}
interface TimelineEntry {
  stage: number;
  device: string;
  events: StageEvent[];
}

export function renderPipeline(
  root: HTMLElement,
  state: ClusterState,
  timeline: TimelineEntry[],
): void {
  const last = state.metrics.at(-1);
  show(
    root,
    h(
      'p',
      { class: 'figures' },
      figure('tokens/s', fixed(last?.tokensPerS, 1), 'tokens-per-s'),
      figure('active sequences', String(last?.activeSequences ?? '–')),
      figure('queued requests', String(last?.queued ?? '–')),
      figure('micro-batches in flight', String(last?.inFlight ?? '–')),
      h('span', { class: `conn conn-${state.connection}` }, state.connection),
    ),
    sparkline(state.metrics),
    table(
      ['stage', 'device', 'utilisation', 'queue', 'forward ms', 'sent/s', 'forwards'],
      (last?.stages ?? []).map((st) => [
        st.stage,
        st.device,
        h('meter', {
          min: 0,
          max: 1,
          value: st.utilisation,
          title: `${(st.utilisation * 100).toFixed(0)}%`,
        }),
        st.queueDepth,
        fixed(st.forwardMs, 2),
        `${bytes(st.bytesPerS)}`,
        st.forwards,
      ]),
      'stage-metrics',
    ),
    h('h3', {}, `Stage timeline, last ${TIMELINE_WINDOW_MS / 1000} s`),
    lanes(timeline),
    h('h3', {}, 'Failover events'),
    state.failovers.length === 0
      ? h('p', { class: 'muted', 'data-testid': 'failover-list' }, 'None since the page opened.')
      : h(
          'ol',
          { class: 'events', 'data-testid': 'failover-list' },
          ...state.failovers.map((e) =>
            h(
              'li',
              { class: `event-${e.kind}` },
              h('time', {}, new Date(e.at).toLocaleTimeString()),
              ` ${e.kind}: ${e.message}`,
            ),
          ),
        ),
  );
}

/** Fetches the stages' recent micro-batches. */
export function fetchTimeline(signal: AbortSignal): Promise<TimelineEntry[]> {
  const since = Date.now() - TIMELINE_WINDOW_MS;
  return getJson<{ stages: TimelineEntry[] }>(`/swarmbee/timeline?since=${since}`, signal).then(
    (r) => r.stages,
  );
}

function figure(label: string, value: string, testId?: string): HTMLElement {
  return h(
    'span',
    { class: 'figure' },
    h('b', { 'data-testid': testId }, value),
    h('small', {}, label),
  );
}

/** Tokens/s over the last two minutes, stretched to the page's width. */
function sparkline(history: MetricsEvent[]): HTMLElement {
  const width = 600;
  const height = 60;
  const svg = s('svg', {
    viewBox: `0 0 ${width} ${height}`,
    preserveAspectRatio: 'none',
    class: 'spark',
    role: 'img',
    'aria-label': 'tokens per second',
  });
  const max = Math.max(1, ...history.map((m) => m.tokensPerS));
  const caption = h(
    'small',
    { class: 'muted' },
    `tokens/s, last ${history.length} s (top: ${max.toFixed(1)})`,
  );
  if (history.length < 2) return h('div', {}, caption, svg);
  const t0 = history[0]!.at;
  const span = Math.max(1, history.at(-1)!.at - t0);
  const points = history
    .map(
      (m) =>
        `${(((m.at - t0) / span) * width).toFixed(1)},${(height - 4 - (m.tokensPerS / max) * (height - 8)).toFixed(1)}`,
    )
    .join(' ');
  svg.append(s('polyline', { points, class: 'spark-line', 'vector-effect': 'non-scaling-stroke' }));
  return h('div', {}, caption, svg);
}

/** One lane per stage: waiting (arrived → compute), computing, sending (computed → sent). */
function lanes(timeline: TimelineEntry[]): SVGElement {
  const width = 1000;
  const lane = 22;
  const left = 110;
  const height = Math.max(1, timeline.length) * lane + 20;
  const svg = s('svg', {
    viewBox: `0 0 ${width} ${height}`,
    class: 'lanes',
    role: 'img',
    'aria-label': 'stage timeline',
    'data-testid': 'timeline',
  });
  const events = timeline.flatMap((t) => t.events);
  const end = Math.max(Date.now(), ...events.map((e) => e.sentAt));
  const start = end - TIMELINE_WINDOW_MS;
  const x = (t: number) =>
    left + ((Math.max(t, start) - start) / TIMELINE_WINDOW_MS) * (width - left);
  timeline.forEach((entry, row) => {
    const y = row * lane;
    svg.append(
      s('text', { x: 0, y: y + 15, class: 'bar-label' }, `stage ${entry.stage} ${entry.device}`),
    );
    for (const e of entry.events) {
      if (e.sentAt < start) continue;
      const segment = (from: number, to: number, kind: string) =>
        svg.append(
          s(
            'rect',
            {
              x: x(from),
              y: y + 2,
              width: Math.max(0.5, x(to) - x(from)),
              height: lane - 4,
              class: `lane-${kind}`,
            },
            s(
              'title',
              {},
              `batch ${e.batchId} (${e.rows} rows) ${kind} ${(to - from).toFixed(1)} ms`,
            ),
          ),
        );
      segment(e.arrivedAt, e.computeStart, 'wait');
      segment(e.computeStart, e.computeEnd, 'compute');
      segment(e.computeEnd, e.sentAt, 'send');
    }
  });
  const legendY = height - 4;
  [
    ['wait', 'wait'],
    ['compute', 'compute'],
    ['send', 'send'],
  ].forEach(([kind, label], i) => {
    svg.append(
      s('rect', {
        x: left + i * 90,
        y: legendY - 10,
        width: 12,
        height: 10,
        class: `lane-${kind}`,
      }),
      s('text', { x: left + i * 90 + 16, y: legendY, class: 'bar-label' }, label),
    );
  });
  return svg;
}
