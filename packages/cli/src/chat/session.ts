/**
 * The interactive loop of `swarmbee chat`: read a line, send the conversation so far
 * (the system message, then every turn), stream the reply, print its speed. Lines
 * starting with "/" are commands. Ctrl-C during a reply stops that reply (what was
 * shown stays in the history); at the prompt it asks for a second Ctrl-C, and a second
 * one, or Ctrl-D, ends the session.
 */
import { createInterface } from 'node:readline';
import { SwarmBeeError } from '@swarmbee/core';
import type { ChatMessage } from '@swarmbee/model';
import type { ChatBackend, Reply } from './backend.js';

export interface ChatSessionOptions {
  /** The system message the conversation starts with (`--system`); none when absent. */
  system?: string;
  input: NodeJS.ReadableStream & { isTTY?: boolean };
  /** The conversation: the prompt, the replies. */
  output: NodeJS.WritableStream;
  /** Notices, errors and each reply's speed. */
  notices: NodeJS.WritableStream;
}

export const CHAT_COMMANDS = [
  ['/reset', 'forget the conversation (the system message stays)'],
  [
    '/system TEXT',
    'set the system message (and forget the conversation); "/system" alone clears it',
  ],
  ['/exit', 'end the session (also Ctrl-D, or Ctrl-C twice at the prompt)'],
] as const;

const PROMPT = '> ';

export async function runChatSession(
  backend: ChatBackend,
  options: ChatSessionOptions,
): Promise<void> {
  const { output, notices } = options;
  let system = options.system;
  let turns: ChatMessage[] = [];
  const conversation = (): ChatMessage[] => [
    ...(system ? [{ role: 'system', content: system }] : []),
    ...turns,
  ];
  const rl = createInterface({
    input: options.input,
    output,
    terminal: options.input.isTTY === true,
    prompt: PROMPT,
  });
  let replying: AbortController | undefined;
  let interruptedAtPrompt = false;
  const interrupt = () => {
    if (replying) {
      replying.abort();
      return;
    }
    if (interruptedAtPrompt) {
      rl.close();
      return;
    }
    interruptedAtPrompt = true;
    notices.write('\n(Ctrl-C again or Ctrl-D to exit)\n');
    rl.prompt();
  };
  // A terminal's Ctrl-C reaches readline; a pipe's reaches the process as SIGINT.
  rl.on('SIGINT', interrupt);
  process.on('SIGINT', interrupt);
  notices.write(
    `chatting with ${backend.label}; ${CHAT_COMMANDS.map(([c]) => c).join(', ')}; Ctrl-C stops a reply\n`,
  );
  rl.prompt();
  try {
    for await (const line of rl) {
      interruptedAtPrompt = false;
      const text = line.trim();
      if (text === '/exit' || text === '/quit') break;
      if (text === '/reset') {
        turns = [];
        notices.write('(conversation reset)\n');
      } else if (text === '/system' || text.startsWith('/system ')) {
        system = text.slice('/system'.length).trim() || undefined;
        turns = [];
        notices.write(
          system ? '(system message set; conversation reset)\n' : '(system message cleared)\n',
        );
      } else if (text.startsWith('/')) {
        notices.write(
          `unknown command ${text.split(/\s/)[0]}; commands:\n${CHAT_COMMANDS.map(([c, d]) => `  ${c.padEnd(14)} ${d}`).join('\n')}\n`,
        );
      } else if (text !== '') {
        replying = new AbortController();
        const reply = await answer(backend, [...conversation(), { role: 'user', content: line }], {
          signal: replying.signal,
          output,
          notices,
        });
        replying = undefined;
        if (reply)
          turns.push({ role: 'user', content: line }, { role: 'assistant', content: reply.text });
      }
      rl.prompt();
    }
  } finally {
    process.off('SIGINT', interrupt);
    rl.close();
  }
}

/** Streams one reply and prints its speed; a coded error is printed and the turn dropped. */
async function answer(
  backend: ChatBackend,
  messages: ChatMessage[],
  io: { signal: AbortSignal; output: NodeJS.WritableStream; notices: NodeJS.WritableStream },
): Promise<Reply | undefined> {
  try {
    const reply = await backend.reply(messages, {
      signal: io.signal,
      onText: (text) => io.output.write(text),
    });
    io.output.write('\n');
    const why = { stop: '', length: ', max tokens reached', interrupted: ', stopped' }[
      reply.finish
    ];
    io.notices.write(`[${reply.tokens} tokens, ${reply.tokensPerSecond.toFixed(1)} tok/s${why}]\n`);
    return reply;
  } catch (error) {
    if (!(error instanceof SwarmBeeError)) throw error;
    io.output.write('\n');
    io.notices.write(`swarmbee: error ${error.code}: ${error.message}\n`);
    return undefined;
  }
}
