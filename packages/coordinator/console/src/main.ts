/**
 * The SwarmBee console: asks for the API key (kept in session storage), then follows the
 * cluster's event stream and shows it in five views — cluster, plan, live pipeline, chat
 * and benchmark reports. Plain DOM and SVG; nothing is fetched but from this coordinator.
 */
import { getJson, storedKey, storeKey } from './api.js';
import { mountBench } from './bench-view.js';
import { mountChat } from './chat-view.js';
import { ClusterState } from './cluster-state.js';
import { renderCluster } from './cluster-view.js';
import { h } from './dom.js';
import { fetchTimeline, renderPipeline, TIMELINE_REFRESH_MS } from './pipeline-view.js';
import { renderPlan } from './plan-view.js';

const VIEWS = ['cluster', 'plan', 'pipeline', 'chat', 'bench'] as const;
type View = (typeof VIEWS)[number];

const state = new ClusterState();
const panels = Object.fromEntries(
  VIEWS.map((v) => [v, document.getElementById(`view-${v}`)!]),
) as Record<View, HTMLElement>;
let current: View = 'cluster';
let timeline: Parameters<typeof renderPipeline>[2] = [];
let timelineTimer: number | undefined;
let renderedCluster = '';

function select(view: View): void {
  current = view;
  for (const v of VIEWS) {
    panels[v].hidden = v !== view;
    document.querySelector(`[data-view="${v}"]`)?.setAttribute('aria-current', String(v === view));
  }
  location.hash = view;
  clearTimeout(timelineTimer);
  if (view === 'pipeline') refreshTimeline();
  render(true);
}

/** The timeline is fetched only while the pipeline view is open, every couple of seconds. */
function refreshTimeline(): void {
  fetchTimeline(AbortSignal.timeout(TIMELINE_REFRESH_MS * 2))
    .then((stages) => {
      timeline = stages;
      render(true);
    })
    .catch(() => {})
    .finally(() => {
      if (current === 'pipeline')
        timelineTimer = window.setTimeout(refreshTimeline, TIMELINE_REFRESH_MS);
    });
}

function render(force = false): void {
  const status = document.getElementById('status')!;
  status.textContent = `${state.connection}${state.cluster.state ? ` · ${state.cluster.state}` : ''}`;
  status.className = `conn conn-${state.connection}`;
  if (current === 'pipeline') renderPipeline(panels.pipeline, state, timeline);
  if (current !== 'cluster' && current !== 'plan') return;
  // The cluster and plan views change only with the cluster, not with each metrics event.
  const key = `${current}:${JSON.stringify(state.cluster)}`;
  if (!force && key === renderedCluster) return;
  renderedCluster = key;
  if (current === 'cluster') renderCluster(panels.cluster, state);
  else renderPlan(panels.plan, state);
}

function askForKey(message: string): void {
  state.stop();
  const dialog = document.getElementById('key-dialog') as HTMLDialogElement;
  document.getElementById('key-message')!.textContent = message;
  if (!dialog.open) dialog.showModal();
}

async function connect(): Promise<void> {
  try {
    // One guarded request tells whether the key (or no key) is accepted.
    await getJson('/v1/models');
  } catch (error) {
    const status = (error as { status?: number }).status;
    if (status === 401)
      return askForKey(storedKey() ? 'That key was refused.' : 'This API needs a key.');
  }
  state.start(() => askForKey('The key was refused.'));
}

function main(): void {
  const tabs = document.getElementById('tabs')!;
  for (const v of VIEWS)
    tabs.append(
      h(
        'button',
        { type: 'button', 'data-view': v, onclick: () => select(v) },
        panels[v].dataset.title ?? v,
      ),
    );
  const form = document.getElementById('key-form') as HTMLFormElement;
  form.addEventListener('submit', () => {
    storeKey((document.getElementById('key-input') as HTMLInputElement).value.trim());
    void connect();
  });
  document.getElementById('forget-key')!.addEventListener('click', () => {
    storeKey('');
    askForKey('Key forgotten.');
  });
  state.onChange(() => render());
  mountChat(panels.chat);
  mountBench(panels.bench);
  const wanted = location.hash.slice(1) as View;
  select(VIEWS.includes(wanted) ? wanted : 'cluster');
  void connect();
}

main();
