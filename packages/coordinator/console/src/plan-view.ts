/**
 * Plan: the model's layers as a bar coloured by device, each stage's memory against its
 * device's, what the planner predicted, and a re-plan control (the admin route).
 */
import { postJson } from './api.js';
import type { ClusterState, PlanView } from './cluster-state.js';
import { bytes, deviceColour, fixed, h, s, show, table } from './dom.js';

const PLANNERS = ['auto', 'dp', 'ga', 'pso', 'even', 'memory', 'solo'];
const OBJECTIVES = ['throughput', 'latency'];

/** The re-plan form is made once, so that a new plan leaves its choices and status alone. */
const forms = new WeakMap<HTMLElement, HTMLElement>();

export function renderPlan(root: HTMLElement, state: ClusterState): void {
  const plan = state.cluster.plan;
  const form = forms.get(root) ?? replanForm(plan);
  forms.set(root, form);
  if (!plan) {
    show(root, h('p', { class: 'muted' }, 'No plan is deployed yet.'), form);
    return;
  }
  const devices = [...new Set(plan.stages.map((st) => st.device))];
  show(
    root,
    h(
      'p',
      { class: 'summary', 'data-testid': 'plan-summary' },
      `${plan.stages.length} stage${plan.stages.length === 1 ? '' : 's'} over ${plan.nLayers} layers · planner ${plan.planner ?? '–'} · objective ${plan.objective ?? '–'}`,
    ),
    h(
      'p',
      { class: 'figures' },
      figure('predicted ms/token', fixed(plan.tpotMs, 2)),
      figure('predicted tok/s', fixed(plan.tokensPerS, 1)),
      figure('predicted TTFT ms', fixed(plan.ttftMs, 1)),
      figure(
        'micro-batch × in flight',
        plan.microBatchSize ? `${plan.microBatchSize} × ${plan.microBatchesInFlight}` : '–',
      ),
    ),
    layerBar(plan, devices),
    table(
      ['stage', 'device', 'layers', 'weights + KV', 'device memory', 'share', 'compute ms'],
      plan.stages.map((st) => [
        st.index,
        st.device,
        `${st.layerStart}–${st.layerEnd - 1}`,
        st.memoryBytes === undefined ? '–' : bytes(st.memoryBytes),
        st.deviceMemoryBytes === undefined ? '–' : bytes(st.deviceMemoryBytes),
        memoryMeter(st.memoryBytes, st.deviceMemoryBytes),
        fixed(st.computeMs, 3),
      ]),
      'plan-stages',
    ),
    plan.bottleneck ? h('p', { class: 'muted' }, `Bottleneck: ${plan.bottleneck}`) : null,
    form,
  );
}

function figure(label: string, value: string): HTMLElement {
  return h('span', { class: 'figure' }, h('b', {}, value), h('small', {}, label));
}

/** The layers, one cell each, coloured by the device that runs them. */
function layerBar(plan: PlanView, devices: string[]): SVGElement {
  const width = 1000;
  const cell = width / Math.max(plan.nLayers, 1);
  const svg = s('svg', {
    viewBox: `0 0 ${width} 56`,
    class: 'layer-bar',
    role: 'img',
    'aria-label': 'layers by device',
    'data-testid': 'layer-bar',
  });
  for (const st of plan.stages) {
    const x = st.layerStart * cell;
    const w = (st.layerEnd - st.layerStart) * cell;
    svg.append(
      s(
        'rect',
        { x, y: 0, width: Math.max(w - 1, 1), height: 36, fill: deviceColour(st.device, devices) },
        s(
          'title',
          {},
          `stage ${st.index} on ${st.device}: layers ${st.layerStart}–${st.layerEnd - 1}`,
        ),
      ),
      s('text', { x: x + w / 2, y: 52, 'text-anchor': 'middle', class: 'bar-label' }, st.device),
    );
  }
  return svg;
}

function memoryMeter(used: number | undefined, total: number | undefined): HTMLElement | string {
  if (!used || !total) return '–';
  const share = used / total;
  return h('meter', {
    min: 0,
    max: 1,
    high: 0.85,
    value: share,
    title: `${(share * 100).toFixed(1)}%`,
  });
}

function replanForm(plan: PlanView | undefined): HTMLElement {
  const planner = h(
    'select',
    { name: 'planner' },
    ...PLANNERS.map((p) => h('option', { selected: p === (plan?.planner ?? 'auto') }, p)),
  );
  const objective = h(
    'select',
    { name: 'objective' },
    ...OBJECTIVES.map((o) => h('option', { selected: o === (plan?.objective ?? 'throughput') }, o)),
  );
  const status = h('span', { class: 'muted', 'data-testid': 'replan-status' });
  const button = h('button', { type: 'submit' }, 'Re-plan');
  const form = h(
    'form',
    { class: 'replan' },
    h('label', {}, 'planner ', planner),
    h('label', {}, 'objective ', objective),
    button,
    status,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    button.disabled = true;
    status.textContent = 're-planning…';
    postJson<{ plan: PlanView }>('/swarmbee/replan', {
      planner: planner.value,
      objective: objective.value,
    })
      .then((answer) => {
        status.textContent = `deployed: ${answer.plan.stages.map((st) => st.device).join(' → ')}`;
      })
      .catch((error: Error) => {
        status.textContent = `failed: ${error.message}`;
      })
      .finally(() => {
        button.disabled = false;
      });
  });
  return form;
}
