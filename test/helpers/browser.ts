/**
 * Headless Chromium for browser tests: the system's binary (Debian's `chromium`, or
 * $CHROMIUM), driven by playwright-core, which downloads no browser. Tests that need it
 * fail under CI=true when it is missing, and skip with a message otherwise.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

/** Longest wait for the browser to start, ms. */
const LAUNCH_TIMEOUT_MS = 30_000;

export function chromiumPath(): string | undefined {
  const named = process.env.CHROMIUM;
  if (named) return existsSync(named) ? named : undefined;
  try {
    return execFileSync('which', ['chromium'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

interface Skippable {
  plan(count: number, comment?: string): void;
  fail(message: string): unknown;
  teardown(fn: () => unknown): void;
}

/** Starts headless Chromium (closed in teardown), or skips the test when there is none. */
export async function launchChromium(t: Skippable): Promise<Browser | undefined> {
  const executablePath = chromiumPath();
  if (!executablePath) {
    const message = 'no chromium on PATH (set $CHROMIUM to its binary)';
    if (process.env.CI === 'true') t.fail(`${message}; CI needs it`);
    else t.plan(0, `${message}; skipping`);
    return undefined;
  }
  const browser = await chromium.launch({
    executablePath,
    timeout: LAUNCH_TIMEOUT_MS,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  t.teardown(() => browser.close());
  return browser;
}
