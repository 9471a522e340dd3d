/** Server-sent events on a raw Node response: `data: <json>\n\n`, ended by `data: [DONE]`. */
import type { ServerResponse } from 'node:http';

export class EventStream {
  #open = true;

  constructor(private readonly response: ServerResponse) {
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    // The client learns at once that its request was accepted, not at its first token.
    response.flushHeaders();
    response.on('close', () => {
      this.#open = false;
    });
  }

  get open(): boolean {
    return this.#open;
  }

  send(data: unknown): void {
    if (this.#open) this.response.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  end(): void {
    if (!this.#open) return;
    this.response.write('data: [DONE]\n\n');
    this.response.end();
    this.#open = false;
  }
}
