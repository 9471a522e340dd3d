/** Cluster: each worker with its state, device and measured speed; the measured links. */
import type { ClusterState } from './cluster-state.js';
import { bytes, deviceColour, fixed, h, show, table } from './dom.js';

export function renderCluster(root: HTMLElement, state: ClusterState): void {
  const c = state.cluster;
  const devices = c.devices ?? [];
  const names = devices.map((d) => d.name);
  const staged = new Set((c.plan?.stages ?? []).map((s) => s.device));
  const measured = new Map((c.measured?.devices ?? []).map((d) => [d.name, d]));
  // A worker seen since the page opened, or named by the plan or the measurement, that is
  // no longer connected is lost.
  const gone = [...new Set([...state.known, ...staged, ...measured.keys()])].filter(
    (name) => !names.includes(name),
  );
  const workerState = (name: string) => {
    if (gone.includes(name)) return 'lost';
    if (c.state === 'deploying') return 'loading';
    if (staged.has(name)) return c.state === 'recovering' ? 'draining' : 'ready';
    return 'joined';
  };
  const rows = [...names, ...gone].map((name) => {
    const d = devices.find((x) => x.name === name);
    const m = measured.get(name);
    return [
      h('span', {
        class: 'swatch',
        style: `background:${deviceColour(name, [...names, ...gone])}`,
      }),
      name,
      h(
        'span',
        { class: `state state-${workerState(name)}`, 'data-testid': 'worker-state' },
        workerState(name),
      ),
      d ? `${d.arch ?? '?'} / ${d.platform ?? '?'}` : '–',
      d?.cpus ?? '–',
      d?.memoryBytes ? bytes(d.memoryBytes) : '–',
      d?.ortVersion ? `onnxruntime ${d.ortVersion}` : '–',
      m?.layerDecodeMs ? `${fixed(m.layerDecodeMs, 3)}${m.estimate ? ' (est.)' : ''}` : '–',
    ];
  });
  const links = (c.measured?.links ?? []).map((l) => [
    `${l.from} → ${l.to}`,
    fixed(l.rttMs, 2),
    `${bytes(l.bandwidthBytesPerS)}/s`,
  ]);
  show(
    root,
    h(
      'p',
      { class: 'summary' },
      'Cluster ',
      h('strong', { 'data-testid': 'cluster-state' }, c.state ?? '…'),
      ` · model ${c.model ?? '…'} · ${names.length} worker${names.length === 1 ? '' : 's'} connected`,
    ),
    table(
      ['', 'worker', 'state', 'arch / os', 'cores', 'memory', 'runtime', 'ms / layer (measured)'],
      rows,
      'workers',
    ),
    h('h3', {}, 'Links'),
    links.length > 0
      ? table(['link', 'RTT ms', 'bandwidth'], links, 'links')
      : h(
          'p',
          { class: 'muted' },
          'No links measured yet (the planner has not profiled this cluster).',
        ),
  );
}
