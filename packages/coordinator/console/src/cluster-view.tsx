/** Cluster: each worker with its state, device and measured speed; the measured links. */
import type { ClusterState } from './cluster-state.js';
import { bytes, deviceColour, fixed, plural } from './format.js';
import { Table } from './table.js';

export function ClusterView(props: { state: ClusterState }) {
  const { state } = props;
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
  const everyone = [...names, ...gone];
  const workerState = (name: string) => {
    if (gone.includes(name)) return 'lost';
    if (c.state === 'deploying') return 'loading';
    if (staged.has(name)) return c.state === 'recovering' ? 'draining' : 'ready';
    return 'joined';
  };
  const rows = everyone.map((name) => {
    const d = devices.find((x) => x.name === name);
    const m = measured.get(name);
    const s = workerState(name);
    return [
      <span class="swatch" style={{ background: deviceColour(name, everyone) }} />,
      name,
      <span class={`state state-${s}`} data-testid="worker-state">
        {s}
      </span>,
      d ? `${d.arch ?? '?'} / ${d.platform ?? '?'}` : '–',
      d?.cpus ?? '–',
      d?.memoryBytes ? bytes(d.memoryBytes) : '–',
      <span data-testid="worker-ep">{d?.executionProvider ?? '–'}</span>,
      d?.ortVersion ? `onnxruntime ${d.ortVersion}` : '–',
      m?.layerDecodeMs ? `${fixed(m.layerDecodeMs, 3)}${m.estimate ? ' (est.)' : ''}` : '–',
    ];
  });
  const links = (c.measured?.links ?? []).map((l) => [
    `${l.from} → ${l.to}`,
    fixed(l.rttMs, 2),
    `${bytes(l.bandwidthBytesPerS)}/s`,
  ]);
  return (
    <>
      <p class="summary">
        Cluster <strong data-testid="cluster-state">{c.state ?? '…'}</strong> · model{' '}
        {c.model ?? '…'} · {plural(names.length, 'worker')} connected
      </p>
      <div class="scroll">
        <Table
          head={[
            '',
            'worker',
            'state',
            'arch / os',
            'cores',
            'memory',
            'provider',
            'runtime',
            'ms / layer (measured)',
          ]}
          rows={rows}
          testId="workers"
        />
      </div>
      <h3>Links</h3>
      {links.length > 0 ? (
        <div class="scroll">
          <Table head={['link', 'RTT ms', 'bandwidth']} rows={links} testId="links" />
        </div>
      ) : (
        <p class="muted">No links measured yet (the planner has not profiled this cluster).</p>
      )}
    </>
  );
}
