/**
 * The stage timeline as lanes, one per stage: each micro-batch's wait (arrived → compute),
 * compute and send (computed → sent), so a bubble or a slow link shows at a glance. SVG,
 * not uPlot: these are intervals on lanes, not a series of values.
 */
import { getJson } from './api.js';

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

export interface TimelineEntry {
  stage: number;
  device: string;
  events: StageEvent[];
}

/** Fetches the stages' recent micro-batches. */
export async function fetchTimeline(signal: AbortSignal): Promise<TimelineEntry[]> {
  const since = Date.now() - TIMELINE_WINDOW_MS;
  const answer = await getJson<{ stages: TimelineEntry[] }>(
    `/swarmbee/timeline?since=${since}`,
    signal,
  );
  return answer.stages;
}

const SEGMENTS = ['wait', 'compute', 'send'] as const;
const WIDTH = 1000;
const LANE_PX = 22;
const LABEL_PX = 110;

export function StageLanes(props: { timeline: TimelineEntry[] }) {
  const { timeline } = props;
  const height = Math.max(1, timeline.length) * LANE_PX + 20;
  const events = timeline.flatMap((t) => t.events);
  const end = Math.max(Date.now(), ...events.map((e) => e.sentAt));
  const start = end - TIMELINE_WINDOW_MS;
  const x = (t: number) =>
    LABEL_PX + ((Math.max(t, start) - start) / TIMELINE_WINDOW_MS) * (WIDTH - LABEL_PX);
  return (
    <div class="scroll">
      <svg
        viewBox={`0 0 ${WIDTH} ${height}`}
        class="lanes"
        role="img"
        aria-label="stage timeline"
        data-testid="timeline"
      >
        {timeline.map((entry, row) => {
          const y = row * LANE_PX;
          return (
            <g key={`${entry.stage}/${entry.device}`}>
              <text x={0} y={y + 15} class="bar-label">
                stage {entry.stage} {entry.device}
              </text>
              {entry.events
                .filter((e) => e.sentAt >= start)
                .flatMap((e) =>
                  (
                    [
                      [e.arrivedAt, e.computeStart],
                      [e.computeStart, e.computeEnd],
                      [e.computeEnd, e.sentAt],
                    ] as const
                  ).map(([from, to], i) => (
                    <rect
                      key={`${e.batchId}-${SEGMENTS[i]}`}
                      x={x(from)}
                      y={y + 2}
                      width={Math.max(0.5, x(to) - x(from))}
                      height={LANE_PX - 4}
                      class={`lane-${SEGMENTS[i]}`}
                    >
                      <title>{`batch ${e.batchId} (${e.rows} rows) ${SEGMENTS[i]} ${(to - from).toFixed(1)} ms`}</title>
                    </rect>
                  )),
                )}
            </g>
          );
        })}
        {SEGMENTS.map((kind, i) => (
          <g key={kind}>
            <rect
              x={LABEL_PX + i * 90}
              y={height - 14}
              width={12}
              height={10}
              class={`lane-${kind}`}
            />
            <text x={LABEL_PX + i * 90 + 16} y={height - 4} class="bar-label">
              {kind}
            </text>
          </g>
        ))}
      </svg>
    </div>
  );
}
