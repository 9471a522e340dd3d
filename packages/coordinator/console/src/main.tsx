/**
 * The SwarmBee console: asks for the API key (kept in session storage), then follows the
 * cluster's event stream and shows it in five views — cluster, plan, live pipeline, chat
 * and benchmark reports. Preact components; the live series drawn by uPlot; nothing is
 * fetched but from this coordinator.
 */
import 'uplot/dist/uPlot.min.css';
import '../console.css';
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { getJson, storedKey, storeKey } from './api.js';
import { BenchView } from './bench-view.js';
import { ChatView } from './chat-view.js';
import { ClusterState, useClusterState } from './cluster-state.js';
import { ClusterView } from './cluster-view.js';
import { PipelineView } from './pipeline-view.js';
import { PlanView } from './plan-view.js';

const VIEWS = [
  ['cluster', 'Cluster'],
  ['plan', 'Plan'],
  ['pipeline', 'Pipeline'],
  ['chat', 'Chat'],
  ['bench', 'Benchmarks'],
] as const;
type View = (typeof VIEWS)[number][0];

function initialView(): View {
  const wanted = location.hash.slice(1);
  return VIEWS.find(([v]) => v === wanted)?.[0] ?? 'cluster';
}

function App(props: { state: ClusterState }) {
  const { state } = props;
  useClusterState(state);
  const [view, setView] = useState<View>(initialView);
  // A new object each time, so that asking again with the same words opens the dialog again.
  const [keyPrompt, setKeyPrompt] = useState<{ message: string } | undefined>();

  const askForKey = (message: string) => {
    state.stop();
    setKeyPrompt({ message });
  };
  const connect = async () => {
    try {
      // One guarded request tells whether the key (or no key) is accepted.
      await getJson('/v1/models');
    } catch (error) {
      if ((error as { status?: number }).status === 401)
        return askForKey(storedKey() ? 'That key was refused.' : 'This API needs a key.');
    }
    setKeyPrompt(undefined);
    state.start(() => askForKey('The key was refused.'));
  };
  // Connect once, when the page opens.
  useEffect(() => {
    void connect();
    return () => state.stop();
  }, []);
  useEffect(() => {
    location.hash = view;
  }, [view]);

  const status = `${state.connection}${state.cluster.state ? ` · ${state.cluster.state}` : ''}`;
  return (
    <>
      <header>
        <h1>SwarmBee</h1>
        <nav id="tabs">
          {VIEWS.map(([v, title]) => (
            <button
              key={v}
              type="button"
              data-view={v}
              aria-current={v === view}
              onClick={() => setView(v)}
            >
              {title}
            </button>
          ))}
        </nav>
        <span id="status" class={`conn conn-${state.connection}`}>
          {status}
        </span>
        <button
          id="forget-key"
          type="button"
          class="link"
          onClick={() => {
            storeKey('');
            askForKey('Key forgotten.');
          }}
        >
          forget key
        </button>
      </header>
      <main>
        {/* Chat and benchmarks stay mounted, so that a reply or an opened run survives a tab change. */}
        <section id="view-cluster" hidden={view !== 'cluster'}>
          {view === 'cluster' && <ClusterView state={state} />}
        </section>
        <section id="view-plan" hidden={view !== 'plan'}>
          {view === 'plan' && <PlanView state={state} />}
        </section>
        <section id="view-pipeline" hidden={view !== 'pipeline'}>
          {view === 'pipeline' && <PipelineView state={state} />}
        </section>
        <section id="view-chat" hidden={view !== 'chat'}>
          <ChatView />
        </section>
        <section id="view-bench" hidden={view !== 'bench'}>
          <BenchView visible={view === 'bench'} />
        </section>
      </main>
      <KeyDialog
        prompt={keyPrompt}
        onKey={(key) => {
          storeKey(key);
          void connect();
        }}
      />
    </>
  );
}

/** The modal that asks for the API key; open while there is a prompt. */
function KeyDialog(props: {
  prompt: { message: string } | undefined;
  onKey: (key: string) => void;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [key, setKey] = useState('');
  useEffect(() => {
    const element = dialog.current;
    if (!element) return;
    if (props.prompt && !element.open) element.showModal();
    else if (!props.prompt && element.open) element.close();
  }, [props.prompt]);
  return (
    <dialog id="key-dialog" ref={dialog}>
      <form
        method="dialog"
        onSubmit={() => {
          props.onKey(key.trim());
          setKey('');
        }}
      >
        <p>{props.prompt?.message}</p>
        <label>
          API key{' '}
          <input
            type="password"
            autocomplete="off"
            data-testid="key-input"
            value={key}
            onInput={(e) => setKey(e.currentTarget.value)}
          />
        </label>
        <button type="submit" data-testid="key-submit">
          Connect
        </button>
        <p class="muted">Kept in this tab's session storage only.</p>
      </form>
    </dialog>
  );
}

render(<App state={new ClusterState()} />, document.getElementById('app')!);
