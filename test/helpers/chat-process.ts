/**
 * `swarmbee chat` as a real process driven through its stdin and stdout: lines are
 * typed, output is awaited by pattern (never by sleeping), Ctrl-C is a SIGINT as a
 * terminal's line discipline would send it.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { CLI_BIN } from './cli.js';

export class ChatProcess {
  readonly child: ChildProcessWithoutNullStreams;
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;
  readonly #listeners = new Set<() => void>();

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [CLI_BIN, 'chat', ...args], { stdio: 'pipe' });
    const append = (key: 'stdout' | 'stderr') => (chunk: Buffer) => {
      this[key] += chunk.toString();
      for (const listener of this.#listeners) listener();
    };
    this.child.stdout.on('data', append('stdout'));
    this.child.stderr.on('data', append('stderr'));
    this.exited = new Promise((resolve) => this.child.once('close', (code) => resolve(code)));
  }

  type(line: string): void {
    this.child.stdin.write(`${line}\n`);
  }

  /** Resolves once `pattern` matches the stream's text after `from` characters. */
  waitFor(
    stream: 'stdout' | 'stderr',
    pattern: RegExp,
    from = 0,
    timeoutMs = 60_000,
  ): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const match = this[stream].slice(from).match(pattern);
        if (match) {
          done();
          resolve(match);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${pattern} on ${stream} in ${timeoutMs} ms; stderr:\n${this.stderr}`));
      }, timeoutMs);
      const onExit = () => {
        done();
        reject(new Error(`chat exited waiting for ${pattern}; stderr:\n${this.stderr}`));
      };
      const done = () => {
        clearTimeout(timer);
        this.#listeners.delete(check);
        this.child.off('close', onExit);
      };
      this.#listeners.add(check);
      this.child.once('close', onExit);
      check();
    });
  }

  /** Sends one line and resolves with the reply's text and its speed line. */
  async say(line: string): Promise<{ reply: string; stats: string }> {
    const out = this.stdout.length;
    const err = this.stderr.length;
    this.type(line);
    const [stats] = await this.waitFor('stderr', /\[\d+ tokens, [\d.]+ tok\/s[^\]]*\]\n/, err);
    // The reply follows the prompt "> " and ends with a newline before the next prompt.
    const text = this.stdout.slice(out);
    // The prompt "> " may land before the reply (written after the last stats line) or after it.
    return { reply: text.replace(/^> /, '').replace(/\n(> )?$/, ''), stats: stats! };
  }

  /** Ends stdin (Ctrl-D) and resolves with the exit code, killing the process after `timeoutMs`. */
  async end(timeoutMs = 30_000): Promise<number | null> {
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}
