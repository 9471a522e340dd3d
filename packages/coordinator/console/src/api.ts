/**
 * The console's link to the coordinator: every request carries the API key the user gave
 * (kept in session storage, so it goes when the tab does); server-sent events are read
 * from fetch, because EventSource cannot send an Authorization header.
 */

const KEY_ITEM = 'swarmbee.apiKey';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function storedKey(): string {
  return sessionStorage.getItem(KEY_ITEM) ?? '';
}

export function storeKey(key: string): void {
  if (key) sessionStorage.setItem(KEY_ITEM, key);
  else sessionStorage.removeItem(KEY_ITEM);
}

function headers(json: boolean): Record<string, string> {
  const key = storedKey();
  return {
    ...(key ? { authorization: `Bearer ${key}` } : {}),
    ...(json ? { 'content-type': 'application/json' } : {}),
  };
}

async function failure(response: Response): Promise<ApiError> {
  const body = (await response.json().catch(() => ({}))) as {
    error?: { code?: string; message?: string };
  };
  return new ApiError(
    response.status,
    body.error?.code ?? `HTTP_${response.status}`,
    body.error?.message ?? response.statusText,
  );
}

export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  const response = await fetch(path, { headers: headers(false), signal: signal ?? null });
  if (!response.ok) throw await failure(response);
  return (await response.json()) as T;
}

export async function getText(path: string, signal?: AbortSignal): Promise<string> {
  const response = await fetch(path, { headers: headers(false), signal: signal ?? null });
  if (!response.ok) throw await failure(response);
  return await response.text();
}

export async function postJson<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
  const response = await fetch(path, {
    method: 'POST',
    headers: headers(true),
    body: JSON.stringify(body),
    signal: signal ?? null,
  });
  if (!response.ok) throw await failure(response);
  return (await response.json()) as T;
}

/**
 * Reads a server-sent event stream, calling `onEvent` with each `data:` JSON until
 * `data: [DONE]`, the end of the stream, or `signal`.
 */
export async function readEvents(
  path: string,
  init: { method?: string; body?: unknown; signal: AbortSignal },
  onEvent: (data: unknown) => void,
): Promise<void> {
  const response = await fetch(path, {
    method: init.method ?? 'GET',
    headers: headers(init.body !== undefined),
    body: init.body === undefined ? null : JSON.stringify(init.body),
    signal: init.signal,
  });
  if (!response.ok || !response.body) throw await failure(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffered += value;
    let end = buffered.indexOf('\n\n');
    while (end >= 0) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      end = buffered.indexOf('\n\n');
      const data = block
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).trimStart())
        .join('\n');
      if (!data) continue;
      if (data === '[DONE]') {
        await reader.cancel();
        return;
      }
      onEvent(JSON.parse(data));
    }
  }
}
