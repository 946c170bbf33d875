import { readFileSync } from 'node:fs';

/** Thrown by a probe to end the wait at once (e.g. the process being waited for has exited). */
export class StopWaiting extends Error {}

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** What is being waited for, for the timeout message. */
  what: string;
}

/**
 * How much longer than a test's stated bound a wait may take: bounds exist to end a test that hangs, not to
 * time the machine, and a machine whose cores are taken by other work (a parallel run, a competing load)
 * stretches every wait. `FLEET_TEST_SLACK` sets it (default 3); the timeout message gives the bound used.
 */
export const TEST_SLACK = Number(process.env.FLEET_TEST_SLACK) || 3;

/**
 * Polls `probe` until it returns something other than undefined/false, and returns that. After
 * `timeoutMs` (times TEST_SLACK) it throws, naming what it waited for and the last value seen. Never a
 * fixed sleep.
 */
export async function waitFor<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, opts: WaitOptions): Promise<T> {
  const timeoutMs = (opts.timeoutMs ?? 30_000) * TEST_SLACK;
  const intervalMs = opts.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
      last = value;
    } catch (err) {
      if (err instanceof StopWaiting) throw err;
      last = err instanceof Error ? `error: ${err.message}` : err;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what} (last: ${JSON.stringify(last)})`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Resolves with the first emission of `event` from `emitter`, or rejects after `timeoutMs`. */
export function nextEvent<T = unknown>(
  emitter: { once(e: string, fn: (...args: never[]) => void): unknown; off(e: string, fn: (...args: never[]) => void): unknown },
  event: string,
  boundMs = 30_000,
): Promise<T> {
  const timeoutMs = boundMs * TEST_SLACK;
  return new Promise((resolve, reject) => {
    const onEvent = (value: T) => {
      clearTimeout(timer);
      resolve(value);
    };
    const timer = setTimeout(() => {
      emitter.off(event, onEvent);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for event "${event}"`));
    }, timeoutMs);
    emitter.once(event, onEvent);
  });
}

/**
 * The PID a program wrote to `path`, once the file holds one; undefined before (no file yet, or one created and
 * not yet written: a probe for waitFor that never reads a half-written file as PID 0).
 */
export function pidIn(path: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(text);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}
