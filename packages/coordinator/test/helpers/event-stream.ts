/**
 * Reads a server-sent event stream over fetch, event by event, each read bounded in time:
 * for tests of `GET /swarmbee/events` and the streamed completions.
 */

export interface EventReader {
  /** The next `data:` payload (parsed JSON, or the text `[DONE]`); `undefined` at the end. */
  next: (timeoutMs?: number) => Promise<unknown>;
  /** Reads until `match` holds for an event, for at most `timeoutMs` in all. */
  until: (match: (event: unknown) => boolean, timeoutMs?: number) => Promise<unknown[]>;
  cancel: () => Promise<void>;
}

export function readEventStream(response: Response): EventReader {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = '';
  const next = async (timeoutMs = 10_000): Promise<unknown> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = buffered.indexOf('\n\n');
      if (end >= 0) {
        const block = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        const data = block
          .split('\n')
          .filter((line) => line.startsWith('data: '))
          .map((line) => line.slice(6))
          .join('\n');
        if (!data) continue;
        return data === '[DONE]' ? data : JSON.parse(data);
      }
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no event within ${timeoutMs} ms`)),
          Math.max(0, deadline - Date.now()),
        );
      });
      try {
        const { value, done } = await Promise.race([reader.read(), timeout]);
        if (done) return undefined;
        buffered += value;
      } finally {
        clearTimeout(timer);
      }
    }
  };
  return {
    next,
    until: async (match, timeoutMs = 10_000) => {
      const deadline = Date.now() + timeoutMs;
      const seen: unknown[] = [];
      for (;;) {
        const event = await next(Math.max(1, deadline - Date.now()));
        if (event === undefined)
          throw new Error(`the stream ended before a match; saw ${JSON.stringify(seen)}`);
        seen.push(event);
        if (match(event)) return seen;
      }
    },
    cancel: () => reader.cancel(),
  };
}
