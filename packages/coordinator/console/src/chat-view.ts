/**
 * Chat playground: messages through `/v1/chat/completions` (the coordinator applies the
 * model's chat template), or a raw prompt through `/v1/completions` for base models;
 * streamed, with a stop button, and the reply's time to first token and tokens/s.
 */
import { readEvents } from './api.js';
import { h, show } from './dom.js';

interface Message {
  role: 'user' | 'assistant' | 'system';
  content: string;
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

export function mountChat(root: HTMLElement): void {
  const messages: Message[] = [];
  const log = h('div', { class: 'chat-log', 'data-testid': 'chat-log', 'aria-live': 'polite' });
  const input = h('textarea', {
    rows: 3,
    placeholder: 'Say something…',
    'data-testid': 'chat-input',
  });
  const mode = h(
    'select',
    {},
    h('option', { value: 'chat' }, 'chat (template)'),
    h('option', { value: 'raw' }, 'raw completion'),
  );
  const temperature = numberInput('0.8', '0', '2', '0.05');
  const topP = numberInput('0.95', '0.01', '1', '0.01');
  const maxTokens = numberInput('128', '1', '4096', '1');
  const stop = h('input', { type: 'text', placeholder: 'stop strings, | separated' });
  const send = h('button', { type: 'submit', 'data-testid': 'chat-send' }, 'Send');
  const abortButton = h(
    'button',
    { type: 'button', disabled: true, 'data-testid': 'chat-stop' },
    'Stop',
  );
  const clear = h('button', { type: 'button' }, 'Clear');
  const stats = h('p', { class: 'muted', 'data-testid': 'chat-stats' });
  let abort: AbortController | undefined;

  const form = h(
    'form',
    { class: 'chat-form' },
    input,
    h(
      'div',
      { class: 'controls' },
      h('label', {}, 'mode ', mode),
      h('label', {}, 'temperature ', temperature),
      h('label', {}, 'top-p ', topP),
      h('label', {}, 'max tokens ', maxTokens),
      h('label', {}, 'stop ', stop),
    ),
    h('div', { class: 'controls' }, send, abortButton, clear),
  );
  show(root, log, stats, form);

  const bubble = (role: string, text: string) => {
    const body = h('div', { class: 'text' }, text);
    log.append(h('div', { class: `msg msg-${role}` }, h('small', {}, role), body));
    return body;
  };
  clear.addEventListener('click', () => {
    messages.length = 0;
    log.replaceChildren();
    stats.textContent = '';
  });
  abortButton.addEventListener('click', () => abort?.abort());
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = input.value;
    if (!text.trim() || abort) return;
    input.value = '';
    const raw = mode.value === 'raw';
    const stops = stop.value.split('|').filter(Boolean).slice(0, 8);
    const body: Record<string, unknown> = {
      stream: true,
      temperature: Number(temperature.value),
      top_p: Number(topP.value),
      max_tokens: Number(maxTokens.value),
      ...(stops.length > 0 ? { stop: stops } : {}),
    };
    if (raw) body.prompt = text;
    else {
      messages.push({ role: 'user', content: text });
      body.messages = messages;
    }
    bubble(raw ? 'prompt' : 'user', text);
    const reply = bubble('assistant', '');
    reply.setAttribute('data-testid', 'chat-reply');
    abort = new AbortController();
    send.disabled = true;
    abortButton.disabled = false;
    const started = performance.now();
    let firstAt = 0;
    let tokens = 0;
    let finish = '';
    const report = () => {
      const seconds = (performance.now() - firstAt) / 1000;
      stats.textContent = firstAt
        ? `TTFT ${(firstAt - started).toFixed(0)} ms · ${tokens} tokens · ${tokens > 1 && seconds > 0 ? ((tokens - 1) / seconds).toFixed(1) : '–'} tok/s${finish ? ` · ${finish}` : ''}`
        : '';
    };
    readEvents(
      raw ? '/v1/completions' : '/v1/chat/completions',
      { method: 'POST', body, signal: abort.signal },
      (data) => {
        const chunk = data as Chunk;
        if (chunk.error) throw new Error(`${chunk.error.code}: ${chunk.error.message}`);
        const choice = chunk.choices?.[0];
        if (!choice) return;
        tokens += choice.token_ids?.length ?? 0;
        const piece = raw ? choice.text : choice.delta?.content;
        if (piece) {
          if (!firstAt) firstAt = performance.now();
          reply.textContent += piece;
        }
        if (choice.finish_reason) finish = choice.finish_reason;
        report();
      },
    )
      .then(() => {
        if (!raw) messages.push({ role: 'assistant', content: reply.textContent ?? '' });
        reply.parentElement?.setAttribute('data-done', 'true');
      })
      .catch((error: Error) => {
        finish = abort?.signal.aborted ? 'stopped' : `failed: ${error.message}`;
        reply.parentElement?.setAttribute('data-done', 'true');
        if (!raw) messages.pop();
      })
      .finally(() => {
        report();
        abort = undefined;
        send.disabled = false;
        abortButton.disabled = true;
      });
  });
}

function numberInput(value: string, min: string, max: string, step: string): HTMLInputElement {
  return h('input', { type: 'number', value, min, max, step, class: 'num' });
}
