/**
 * HTTP/1.1 over a raw socket, for requests no client library would send: absolute-form
 * targets, odd methods, broken headers, bodies dribbled byte by byte. Every exchange is
 * bounded in time.
 */
import { connect } from 'node:net';

export interface RawResponse {
  /** 0 when the server closed without answering. */
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Milliseconds from connecting to the connection's end. */
  ms: number;
}

export interface RawOptions {
  /** Pieces written one by one after `head`, `gapMs` apart. */
  dribble?: string[];
  gapMs?: number;
  /** Give up (and fail) after this long. Default 15 s. */
  timeoutMs?: number;
}

export function rawRequest(
  port: number,
  head: string,
  options: RawOptions = {},
): Promise<RawResponse> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no end of the response within ${options.timeoutMs ?? 15_000} ms`));
    }, options.timeoutMs ?? 15_000);
    let dribbling: NodeJS.Timeout | undefined;
    socket.on('connect', () => {
      socket.write(head);
      const pieces = [...(options.dribble ?? [])];
      if (pieces.length === 0) return;
      dribbling = setInterval(() => {
        const piece = pieces.shift();
        if (piece === undefined || socket.destroyed) clearInterval(dribbling);
        else socket.write(piece);
      }, options.gapMs ?? 200);
    });
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      // A complete response ends the exchange even on a connection kept alive.
      if (isComplete(Buffer.concat(chunks))) socket.destroy();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      clearInterval(dribbling);
      resolve({ ...parseResponse(Buffer.concat(chunks)), ms: performance.now() - started });
    });
  });
}

/** Status, lower-cased headers and the (de-chunked) body of the first response in `bytes`. */
export function parseResponse(bytes: Buffer): Omit<RawResponse, 'ms'> {
  // Interim answers (100 Continue) come before the response itself.
  while (/^HTTP\/1\.[01] 1\d\d /.test(bytes.toString('latin1', 0, 16))) {
    const end = bytes.indexOf('\r\n\r\n');
    if (end < 0) break;
    bytes = bytes.subarray(end + 4);
  }
  const text = bytes.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (!text.startsWith('HTTP/1.') || end < 0) return { status: 0, headers: {}, body: '' };
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = bytes.subarray(Buffer.byteLength(text.slice(0, end + 4), 'latin1'));
  if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
  else if (headers['content-length'] !== undefined)
    body = body.subarray(0, Number(headers['content-length']));
  return { status: Number(statusLine!.split(' ')[1]), headers, body: body.toString('utf8') };
}

function isComplete(received: Buffer): boolean {
  let bytes = received;
  while (/^HTTP\/1\.[01] 1\d\d /.test(bytes.toString('latin1', 0, 16))) {
    const interim = bytes.indexOf('\r\n\r\n');
    if (interim < 0) return false;
    bytes = bytes.subarray(interim + 4);
  }
  const end = bytes.indexOf('\r\n\r\n');
  if (end < 0) return false;
  const headText = bytes.toString('latin1', 0, end).toLowerCase();
  const body = bytes.subarray(end + 4);
  if (/\r\ntransfer-encoding: *chunked/.test(headText))
    return body.includes('\r\n0\r\n\r\n') || body.subarray(0, 5).toString() === '0\r\n\r\n';
  const length = /\r\ncontent-length: *(\d+)/.exec(headText);
  return length !== null && body.length >= Number(length[1]);
}

function dechunk(bytes: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = bytes.indexOf('\r\n', at);
    if (lineEnd < 0) break;
    const size = Number.parseInt(bytes.toString('latin1', at, lineEnd), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(bytes.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

/** A request head: request line, `Host`, `Connection: close`, then `headers`. */
export function head(requestLine: string, headers: Record<string, string> = {}): string {
  const lines = [requestLine, 'Host: 127.0.0.1', 'Connection: close'];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}
