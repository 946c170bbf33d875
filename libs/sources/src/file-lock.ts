import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import lockfile from 'proper-lockfile';

/** A lock whose holder stopped refreshing it (a process killed mid-fetch) is taken over after this long. */
export const LOCK_STALE_MS = 10_000;

/** Per lock path, the tail of this process's queue for it: its own callers wait in line, not by polling. */
const queues = new Map<string, Promise<unknown>>();

/**
 * Holds the lock at `path` (a folder `<path>.lock`, shared by every process on the host) while `fn` runs.
 * Callers in this process queue for it in order; across processes the lock is polled. Waits for another
 * holder at most `waitMs`, or until its lock goes stale; `signal` stops the wait.
 */
export function withFileLock<T>(
  path: string,
  opts: { waitMs: number; signal?: AbortSignal; onCompromised: (err: Error) => void },
  fn: () => Promise<T>,
): Promise<T> {
  const before = queues.get(path) ?? Promise.resolve();
  const mine = before.catch(() => undefined).then(() => holdFileLock(path, opts, fn));
  const tail = mine.catch(() => undefined);
  queues.set(path, tail);
  void tail.then(() => {
    if (queues.get(path) === tail) queues.delete(path);
  });
  return mine;
}

async function holdFileLock<T>(
  path: string,
  opts: { waitMs: number; signal?: AbortSignal; onCompromised: (err: Error) => void },
  fn: () => Promise<T>,
): Promise<T> {
  await mkdir(dirname(path), { recursive: true });
  const deadline = Date.now() + opts.waitMs;
  let release: (() => Promise<void>) | undefined;
  while (!release) {
    try {
      release = await lockfile.lock(path, {
        realpath: false,
        lockfilePath: `${path}.lock`,
        stale: LOCK_STALE_MS,
        update: LOCK_STALE_MS / 4,
        // A holder whose refresh came late: the work locks guard here is idempotent, so go on and say so.
        onCompromised: opts.onCompromised,
      });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw e;
      if (opts.signal?.aborted) throw opts.signal.reason;
      if (Date.now() > deadline) throw new Error(`waited ${opts.waitMs} ms for the lock ${path}`, { cause: e });
      await delay(10 + Math.floor(Math.random() * 30));
    }
  }
  try {
    return await fn();
  } finally {
    await release().catch(() => undefined);
  }
}
