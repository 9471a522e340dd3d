/** TLS and limit flags shared by the coordinator and worker commands. */
import type { ClientTlsOptions, ServerTlsOptions } from '@swarmbee/protocol';

export const tlsOptions = {
  'tls-cert': {
    type: 'string',
    describe: 'Serve wss:// (and https:// for the API) with this PEM certificate; needs --tls-key',
  },
  'tls-key': { type: 'string', describe: 'PEM private key for --tls-cert' },
  'tls-ca': {
    type: 'string',
    describe:
      "PEM CA certificate(s) to trust for peers' wss:// (e.g. the cluster's self-signed cert)",
  },
} as const;

export function serverTlsFrom(args: {
  tlsCert?: string;
  tlsKey?: string;
}): ServerTlsOptions | undefined {
  if (args.tlsCert === undefined && args.tlsKey === undefined) return undefined;
  const tls: ServerTlsOptions = {};
  if (args.tlsCert !== undefined) tls.certFile = args.tlsCert;
  if (args.tlsKey !== undefined) tls.keyFile = args.tlsKey;
  return tls;
}

export function clientTlsFrom(args: { tlsCa?: string }): ClientTlsOptions | undefined {
  return args.tlsCa === undefined ? undefined : { caFile: args.tlsCa };
}

export const frameLimitOption = {
  'max-frame-mib': {
    type: 'number',
    describe:
      'Largest wire frame accepted, MiB (default 64); bigger ones close the connection with 1009',
  },
} as const;

export function frameLimitFrom(args: { maxFrameMib?: number }): { maxFrameBytes?: number } {
  return args.maxFrameMib === undefined
    ? {}
    : { maxFrameBytes: Math.round(args.maxFrameMib * 2 ** 20) };
}

export const serviceLimitOptions = {
  'max-active': { type: 'number', describe: 'Sequences generated at once (default 32)' },
  'max-queued': {
    type: 'number',
    describe: 'Requests waiting for a slot; one more gets 429 (default 256)',
  },
  'max-prompt-tokens': {
    type: 'number',
    describe: "Longest prompt accepted, tokens (default: the model's context); longer gets 413",
  },
  'max-prompt-chars': {
    type: 'number',
    describe:
      "Longest text prompt (a chat: its messages' text), characters; longer gets 413 before it is tokenized (default: --max-prompt-tokens × the tokenizer's longest token)",
  },
  'max-tokens': {
    type: 'number',
    describe: "Most tokens one request may ask for (default: the model's context)",
  },
  'tokenizer-threads': {
    type: 'number',
    describe: 'Threads that tokenize prompts off the event loop (default 2)',
  },
  'max-body-kib': {
    type: 'number',
    describe: 'Largest API request body, KiB (default 1024); bigger gets 413',
  },
} as const;

export function serviceLimitsFrom(args: {
  maxActive?: number;
  maxQueued?: number;
  maxPromptTokens?: number;
  maxPromptChars?: number;
  maxTokens?: number;
  maxBodyKib?: number;
}) {
  const limits: {
    maxActive?: number;
    maxQueued?: number;
    maxPromptTokens?: number;
    maxPromptChars?: number;
    maxTokens?: number;
    maxBodyBytes?: number;
  } = {};
  if (args.maxActive !== undefined) limits.maxActive = args.maxActive;
  if (args.maxQueued !== undefined) limits.maxQueued = args.maxQueued;
  if (args.maxPromptTokens !== undefined) limits.maxPromptTokens = args.maxPromptTokens;
  if (args.maxPromptChars !== undefined) limits.maxPromptChars = args.maxPromptChars;
  if (args.maxTokens !== undefined) limits.maxTokens = args.maxTokens;
  if (args.maxBodyKib !== undefined) limits.maxBodyBytes = Math.round(args.maxBodyKib * 1024);
  return limits;
}

export const httpTimeoutOptions = {
  'headers-timeout-ms': {
    type: 'number',
    describe:
      'Time an API client has to send its request headers, ms (default 10000); slower gets 408',
  },
  'request-timeout-ms': {
    type: 'number',
    describe:
      'Time an API client has to send a whole request, body included, ms (default 30000); slower gets 408',
  },
} as const;

export function httpTimeoutsFrom(args: { headersTimeoutMs?: number; requestTimeoutMs?: number }): {
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
} {
  const timeouts: { headersTimeoutMs?: number; requestTimeoutMs?: number } = {};
  if (args.headersTimeoutMs !== undefined) timeouts.headersTimeoutMs = args.headersTimeoutMs;
  if (args.requestTimeoutMs !== undefined) timeouts.requestTimeoutMs = args.requestTimeoutMs;
  return timeouts;
}

export const stageLimitOptions = {
  'max-sequences': {
    type: 'number',
    describe:
      'Most sequences this stage keeps a KV cache for (default 256); the coordinator queues requests beyond it',
  },
  'kv-budget-mib': {
    type: 'number',
    describe:
      'KV-cache budget of this stage, MiB (default 2048); the coordinator queues requests beyond it, and refuses (413) one that could never fit',
  },
} as const;
