/**
 * Chat playground: messages through `/v1/chat/completions` (the coordinator applies the
 * model's chat template), or a raw prompt through `/v1/completions` for base models;
 * streamed, with a stop button, and the reply's time to first token and tokens/s.
 */
import { useRef, useState } from 'preact/hooks';
import { readEvents } from './api.js';

interface Message {
  role: 'user' | 'assistant' | 'system';
  content: string;
}

/** What the log shows: a message, and for a reply whether its stream has ended. */
interface Bubble {
  role: 'user' | 'prompt' | 'assistant';
  text: string;
  done: boolean;
}

interface Chunk {
  choices?: {
    delta?: { content?: string };
    text?: string;
    token_ids?: number[];
    finish_reason?: string | null;
  }[];
  error?: { code: string; message: string };
}

/** Most stop strings a request may carry. */
const MAX_STOP_STRINGS = 8;

export function ChatView() {
  const [bubbles, setBubbles] = useState<Bubble[]>([]);
  const [input, setInput] = useState('');
  const [raw, setRaw] = useState(false);
  const [temperature, setTemperature] = useState('0.8');
  const [topP, setTopP] = useState('0.95');
  const [maxTokens, setMaxTokens] = useState('128');
  const [stop, setStop] = useState('');
  const [stats, setStats] = useState('');
  const [abort, setAbort] = useState<AbortController | undefined>();
  // The conversation sent with each request: the user's turns and the finished replies.
  const messages = useRef<Message[]>([]);

  /** Changes the reply being streamed: the last bubble (none once the log was cleared). */
  const updateReply = (change: (reply: Bubble) => Bubble) =>
    setBubbles((all) => {
      const reply = all.at(-1);
      return reply?.role === 'assistant' ? [...all.slice(0, -1), change(reply)] : all;
    });

  const send = (event: Event) => {
    event.preventDefault();
    if (!input.trim() || abort) return;
    const text = input;
    setInput('');
    const stops = stop.split('|').filter(Boolean).slice(0, MAX_STOP_STRINGS);
    const body: Record<string, unknown> = {
      stream: true,
      temperature: Number(temperature),
      top_p: Number(topP),
      max_tokens: Number(maxTokens),
      ...(stops.length > 0 ? { stop: stops } : {}),
    };
    if (raw) body.prompt = text;
    else {
      messages.current.push({ role: 'user', content: text });
      body.messages = messages.current;
    }
    setBubbles((all) => [
      ...all,
      { role: raw ? 'prompt' : 'user', text, done: true },
      { role: 'assistant', text: '', done: false },
    ]);
    const controller = new AbortController();
    setAbort(controller);
    const started = performance.now();
    let firstAt = 0;
    let tokens = 0;
    let finish = '';
    let reply = '';
    const report = () => {
      const seconds = (performance.now() - firstAt) / 1000;
      const rate = tokens > 1 && seconds > 0 ? ((tokens - 1) / seconds).toFixed(1) : '–';
      setStats(
        firstAt
          ? `TTFT ${(firstAt - started).toFixed(0)} ms · ${tokens} tokens · ${rate} tok/s${finish ? ` · ${finish}` : ''}`
          : '',
      );
    };
    readEvents(
      raw ? '/v1/completions' : '/v1/chat/completions',
      { method: 'POST', body, signal: controller.signal },
      (data) => {
        const chunk = data as Chunk;
        if (chunk.error) throw new Error(`${chunk.error.code}: ${chunk.error.message}`);
        const choice = chunk.choices?.[0];
        if (!choice) return;
        tokens += choice.token_ids?.length ?? 0;
        const piece = raw ? choice.text : choice.delta?.content;
        if (piece) {
          if (!firstAt) firstAt = performance.now();
          reply += piece;
          updateReply((b) => ({ ...b, text: reply }));
        }
        if (choice.finish_reason) finish = choice.finish_reason;
        report();
      },
    )
      .then(() => {
        if (!raw) messages.current.push({ role: 'assistant', content: reply });
      })
      .catch((error: Error) => {
        finish = controller.signal.aborted ? 'stopped' : `failed: ${error.message}`;
        if (!raw) messages.current.pop();
      })
      .finally(() => {
        report();
        updateReply((b) => ({ ...b, done: true }));
        setAbort(undefined);
      });
  };

  const NUMBER_FIELDS = [
    ['temperature', temperature, setTemperature, '0', '2', '0.05'],
    ['top-p', topP, setTopP, '0.01', '1', '0.01'],
    ['max tokens', maxTokens, setMaxTokens, '1', '4096', '1'],
  ] as const;
  return (
    <>
      <div class="chat-log" data-testid="chat-log" aria-live="polite">
        {bubbles.map((b, i) => (
          <div key={i} class={`msg msg-${b.role}`} data-done={String(b.done)}>
            <small>{b.role}</small>
            <div class="text" data-testid={b.role === 'assistant' ? 'chat-reply' : undefined}>
              {b.text}
            </div>
          </div>
        ))}
      </div>
      <p class="muted" data-testid="chat-stats">
        {stats}
      </p>
      <form class="chat-form" onSubmit={send}>
        <textarea
          rows={3}
          placeholder="Say something…"
          data-testid="chat-input"
          value={input}
          onInput={(e) => setInput(e.currentTarget.value)}
        />
        <div class="controls">
          <label>
            mode{' '}
            <select
              value={raw ? 'raw' : 'chat'}
              onChange={(e) => setRaw(e.currentTarget.value === 'raw')}
            >
              <option value="chat">chat (template)</option>
              <option value="raw">raw completion</option>
            </select>
          </label>
          {NUMBER_FIELDS.map(([label, value, set, min, max, step]) => (
            <label key={label}>
              {label}{' '}
              <input
                type="number"
                class="num"
                value={value}
                min={min}
                max={max}
                step={step}
                onInput={(e) => set(e.currentTarget.value)}
              />
            </label>
          ))}
          <label>
            stop{' '}
            <input
              type="text"
              placeholder="stop strings, | separated"
              value={stop}
              onInput={(e) => setStop(e.currentTarget.value)}
            />
          </label>
        </div>
        <div class="controls">
          <button type="submit" data-testid="chat-send" disabled={abort !== undefined}>
            Send
          </button>
          <button
            type="button"
            data-testid="chat-stop"
            disabled={abort === undefined}
            onClick={() => abort?.abort()}
          >
            Stop
          </button>
          <button
            type="button"
            onClick={() => {
              messages.current = [];
              setBubbles([]);
              setStats('');
            }}
          >
            Clear
          </button>
        </div>
      </form>
    </>
  );
}
