/**
 * Live pipeline: the cluster's tokens/s and each stage's utilisation as live series; per
 * stage its utilisation, queue, forward time and bytes/s now; the stage timeline of the
 * last seconds as lanes (wait, compute, send); and failover as it happens.
 */
import { useEffect, useMemo, useState } from 'preact/hooks';
import type uPlot from 'uplot';
import type { ClusterState, MetricsEvent } from './cluster-state.js';
import { bytes, deviceColour, fixed } from './format.js';
import {
  fetchTimeline,
  StageLanes,
  TIMELINE_REFRESH_MS,
  TIMELINE_WINDOW_MS,
  type TimelineEntry,
} from './stage-lanes.js';
import { Figure, Table } from './table.js';
import { TimeChart } from './time-chart.js';

const TOKENS_COLOUR = '#b7791f';

export function PipelineView(props: { state: ClusterState }) {
  const { state } = props;
  const timeline = useTimeline();
  const last = state.metrics.at(-1);
  const stages = last?.stages ?? [];
  const devices = stages.map((st) => st.device);
  const stageKeys = stages.map((st) => `${st.stage}/${st.device}`);
  // The history grows in place: its newest event tells whether it changed.
  const { tokens, utilisation } = useMemo(
    () => series(state.metrics, stageKeys),
    [last, stageKeys.join()],
  );
  return (
    <>
      <p class="figures">
        <Figure label="tokens/s" value={fixed(last?.tokensPerS, 1)} testId="tokens-per-s" />
        <Figure label="active sequences" value={String(last?.activeSequences ?? '–')} />
        <Figure label="queued requests" value={String(last?.queued ?? '–')} />
        <Figure label="micro-batches in flight" value={String(last?.inFlight ?? '–')} />
        <span class={`conn conn-${state.connection}`}>{state.connection}</span>
      </p>
      <div class="charts">
        <TimeChart
          title={`tokens/s, last ${state.metrics.length} s`}
          unit="tok/s"
          series={[{ label: 'tokens/s', colour: TOKENS_COLOUR }]}
          data={tokens}
          testId="tokens-chart"
        />
        <TimeChart
          title="utilisation per stage: % of the last 5 s in forward passes"
          unit="%"
          range={[0, 100]}
          series={stages.map((st) => ({
            label: `stage ${st.stage} ${st.device}`,
            colour: deviceColour(st.device, devices),
          }))}
          data={utilisation}
          testId="utilisation-chart"
        />
      </div>
      <div class="scroll">
        <Table
          head={['stage', 'device', 'utilisation', 'queue', 'forward ms', 'sent/s', 'forwards']}
          rows={stages.map((st) => [
            st.stage,
            st.device,
            st.utilisation === null ? (
              '–'
            ) : (
              <meter
                min={0}
                max={1}
                value={st.utilisation}
                title={`${(st.utilisation * 100).toFixed(0)}%`}
              />
            ),
            st.queueDepth ?? '–',
            fixed(st.forwardMs, 2),
            bytes(st.bytesPerS),
            st.forwards ?? '–',
          ])}
          testId="stage-metrics"
        />
      </div>
      <h3>Stage timeline, last {TIMELINE_WINDOW_MS / 1000} s</h3>
      <StageLanes timeline={timeline} />
      <h3>Failover events</h3>
      {state.failovers.length === 0 ? (
        <p class="muted" data-testid="failover-list">
          None since the page opened.
        </p>
      ) : (
        <ol class="events" data-testid="failover-list">
          {state.failovers.map((e) => (
            <li key={`${e.at}-${e.kind}-${e.message}`} class={`event-${e.kind}`}>
              <time>{new Date(e.at).toLocaleTimeString()}</time> {e.kind}: {e.message}
            </li>
          ))}
        </ol>
      )}
    </>
  );
}

/** The stages' recent micro-batches, fetched every couple of seconds while the view is open. */
function useTimeline(): TimelineEntry[] {
  const [timeline, setTimeline] = useState<TimelineEntry[]>([]);
  useEffect(() => {
    let timer: number | undefined;
    let open = true;
    const refresh = () => {
      fetchTimeline(AbortSignal.timeout(TIMELINE_REFRESH_MS * 2))
        .then((stages) => {
          if (open) setTimeline(stages);
        })
        .catch(() => {})
        .finally(() => {
          if (open) timer = window.setTimeout(refresh, TIMELINE_REFRESH_MS);
        });
    };
    refresh();
    return () => {
      open = false;
      clearTimeout(timer);
    };
  }, []);
  return timeline;
}

/** The metrics history as uPlot's columns: tokens/s, and each stage's utilisation in %. */
function series(
  history: readonly MetricsEvent[],
  stageKeys: readonly string[],
): { tokens: uPlot.AlignedData; utilisation: uPlot.AlignedData } {
  const times = history.map((m) => m.at / 1000);
  const perStage = stageKeys.map((key) =>
    history.map((m) => {
      const stage = m.stages.find((st) => `${st.stage}/${st.device}` === key);
      return stage?.utilisation === null || stage === undefined ? null : stage.utilisation * 100;
    }),
  );
  return {
    tokens: [times, history.map((m) => m.tokensPerS)],
    utilisation: [times, ...perStage],
  };
}
