/**
 * Plan: the model's layers as a bar coloured by device, each stage's memory against its
 * device's, what the planner predicted, and a re-plan control (the admin route).
 */
import { useState } from 'preact/hooks';
import { postJson } from './api.js';
import type { ClusterState, PlanView as Plan } from './cluster-state.js';
import { bytes, deviceColour, fixed, plural } from './format.js';
import { Figure, Table } from './table.js';

const PLANNERS = ['auto', 'dp', 'ga', 'pso', 'even', 'memory', 'solo'];
const OBJECTIVES = ['throughput', 'latency'];

export function PlanView(props: { state: ClusterState }) {
  const plan = props.state.cluster.plan;
  // The form keeps its place whether a plan is deployed or not (there is none while one
  // deploys), so that a re-plan's status outlives the plan it replaced.
  return (
    <>
      {plan ? <DeployedPlan plan={plan} /> : <p class="muted">No plan is deployed yet.</p>}
      <ReplanForm plan={plan} />
    </>
  );
}

function DeployedPlan(props: { plan: Plan }) {
  const { plan } = props;
  const devices = [...new Set(plan.stages.map((st) => st.device))];
  return (
    <>
      <p class="summary" data-testid="plan-summary">
        {plural(plan.stages.length, 'stage')} over {plan.nLayers} layers · planner{' '}
        {plan.planner ?? '–'} · objective {plan.objective ?? '–'}
      </p>
      <p class="figures">
        <Figure label="predicted ms/token" value={fixed(plan.tpotMs, 2)} />
        <Figure label="predicted tok/s" value={fixed(plan.tokensPerS, 1)} />
        <Figure label="predicted TTFT ms" value={fixed(plan.ttftMs, 1)} />
        <Figure
          label="micro-batch × in flight"
          value={
            plan.microBatchSize ? `${plan.microBatchSize} × ${plan.microBatchesInFlight}` : '–'
          }
        />
      </p>
      <div class="scroll">
        <LayerBar plan={plan} devices={devices} />
      </div>
      <div class="scroll">
        <Table
          head={[
            'stage',
            'device',
            'layers',
            'weights + KV',
            'device memory',
            'share',
            'compute ms',
          ]}
          rows={plan.stages.map((st) => [
            st.index,
            st.device,
            `${st.layerStart}–${st.layerEnd - 1}`,
            bytes(st.memoryBytes),
            bytes(st.deviceMemoryBytes),
            <MemoryMeter used={st.memoryBytes} total={st.deviceMemoryBytes} />,
            fixed(st.computeMs, 3),
          ])}
          testId="plan-stages"
        />
      </div>
      {plan.bottleneck && <p class="muted">Bottleneck: {plan.bottleneck}</p>}
    </>
  );
}

/** The layers, one cell each, coloured by the device that runs them. */
function LayerBar(props: { plan: Plan; devices: string[] }) {
  const { plan, devices } = props;
  const width = 1000;
  const cell = width / Math.max(plan.nLayers, 1);
  return (
    <svg
      viewBox={`0 0 ${width} 56`}
      class="layer-bar"
      role="img"
      aria-label="layers by device"
      data-testid="layer-bar"
    >
      {plan.stages.map((st) => {
        const x = st.layerStart * cell;
        const w = (st.layerEnd - st.layerStart) * cell;
        return (
          <g key={st.index}>
            <rect
              x={x}
              y={0}
              width={Math.max(w - 1, 1)}
              height={36}
              fill={deviceColour(st.device, devices)}
            >
              <title>{`stage ${st.index} on ${st.device}: layers ${st.layerStart}–${st.layerEnd - 1}`}</title>
            </rect>
            <text x={x + w / 2} y={52} text-anchor="middle" class="bar-label">
              {st.device}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

function MemoryMeter(props: { used: number | undefined; total: number | undefined }) {
  if (!props.used || !props.total) return <>–</>;
  const share = props.used / props.total;
  return <meter min={0} max={1} high={0.85} value={share} title={`${(share * 100).toFixed(1)}%`} />;
}

/** Re-plan with a planner and objective; its choices and status outlive a new plan. */
function ReplanForm(props: { plan: Plan | undefined }) {
  const [planner, setPlanner] = useState(props.plan?.planner ?? 'auto');
  const [objective, setObjective] = useState(props.plan?.objective ?? 'throughput');
  const [busy, setBusy] = useState(false);
  const [status, setStatus] = useState('');
  const submit = (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setStatus('re-planning…');
    postJson<{ plan: Plan }>('/swarmbee/replan', { planner, objective })
      .then((answer) =>
        setStatus(`deployed: ${answer.plan.stages.map((st) => st.device).join(' → ')}`),
      )
      .catch((error: Error) => setStatus(`failed: ${error.message}`))
      .finally(() => setBusy(false));
  };
  return (
    <form class="replan" onSubmit={submit}>
      <label>
        planner{' '}
        <select name="planner" value={planner} onChange={(e) => setPlanner(e.currentTarget.value)}>
          {PLANNERS.map((p) => (
            <option key={p}>{p}</option>
          ))}
        </select>
      </label>
      <label>
        objective{' '}
        <select
          name="objective"
          value={objective}
          onChange={(e) => setObjective(e.currentTarget.value)}
        >
          {OBJECTIVES.map((o) => (
            <option key={o}>{o}</option>
          ))}
        </select>
      </label>
      <button type="submit" disabled={busy}>
        Re-plan
      </button>
      <span class="muted" data-testid="replan-status">
        {status}
      </span>
    </form>
  );
}
