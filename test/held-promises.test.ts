/**
 * The repository's held-promise check (scripts/check-held-promises.ts, run by
 * `npm run lint`): it must flag the shape that ended the coordinator on a closing
 * channel, pass the shapes that replaced it, and pass the sources as they are.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import ts from 'typescript';
import { findHeldPromises } from '../scripts/check-held-promises.js';

const FIXTURE = `
declare function expect(type: string): Promise<string>;
declare function send(message: string): void;
declare function untilSignal(): Promise<string>;
/** @neverRejects */
declare function settles(): Promise<void>;

// The deployer's old shape: if send throws, nobody observes \`ready\`.
export async function held(): Promise<string> {
  const ready = expect('stage.ready');
  send('stage.load');
  return await ready;
}

// Awaited while another wait runs: a rejection in between has no handler.
export async function heldAcrossAwait(): Promise<void> {
  const stored = expect('shard.stored');
  await expect('drain');
  await stored;
}

// Created and forgotten.
export function forgotten(): void {
  const p = expect('x');
}

// Fine: one promise, observed at once.
export async function direct(): Promise<string> {
  send('stage.load');
  return await expect('stage.ready');
}

// Fine: observed by the very next statement.
export async function nextStatement(): Promise<string[]> {
  const a = expect('a');
  return await Promise.all([a, expect('b')]);
}

// Fine: promises that cannot reject.
export async function cannotReject(): Promise<void> {
  const closed = new Promise<void>((resolve) => setTimeout(resolve, 1));
  const done = settles();
  send('x');
  await closed;
  await done;
}

// Fine: marked, with the reason.
export async function marked(): Promise<void> {
  // held-promise: the test says why
  const p = expect('y');
  send('y');
  await p;
}
`;

t.test(
  'the held-promise check flags promises held while other code runs, and only those',
  async (t) => {
    const file = join(t.testdir(), 'fixture.ts');
    writeFileSync(file, FIXTURE);
    const program = ts.createProgram([file], {
      strict: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      types: [],
      lib: ['lib.es2022.d.ts'],
    });
    const findings = findHeldPromises(program, (name) => name === file);
    t.same(
      findings.map((f) => f.name).sort(),
      ['p', 'ready', 'stored'],
      findings.map((f) => `${f.line}: ${f.name} ${f.why}`).join('\n'),
    );
    t.match(findings.find((f) => f.name === 'ready')?.why, /2 statements later/);
    t.match(findings.find((f) => f.name === 'p')?.why, /never referenced/);
  },
);
