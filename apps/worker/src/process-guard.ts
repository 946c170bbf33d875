/**
 * The worker's guard: one small process per worker, started at boot, in a session of its own (so a
 * terminal's Ctrl-C or Ctrl-Z aimed at the worker does not reach it). The worker tells it, as JSON lines
 * on its stdin, which process trees its tasks started and until when each task's lock is known to be held.
 *
 * - A deadline passes without news (the worker is stopped, paused, or its event loop is stuck): the guard
 *   ends that task's tree by itself, before the lock expires and another worker may start the task again
 *   (a dead man's switch), and reports `{"op":"expired"}` on its stdout.
 * - Its stdin closes (the worker exited, even by SIGKILL): it ends every tree the worker's tasks started
 *   (tracked groups and cgroups, and every process carrying the worker's cookie, tracked or not) and exits.
 *
 * Usage: node process-guard.js <worker cookie> [<worker cgroup dir>]
 */
import { createInterface } from 'node:readline';
import { CgroupTree, signalCookie, signalTree, type TaskTree, WORKER_COOKIE_VAR } from '@fleet/exec';

export type GuardMessage =
  { op: 'track'; key: string; tree: TaskTree; ms: number } | { op: 'deadline'; key: string; ms: number } | { op: 'untrack'; key: string };

const [workerCookie, cgroupDir] = process.argv.slice(2);
const tracked = new Map<string, { tree: TaskTree; timer: NodeJS.Timeout }>();

function arm(key: string, tree: TaskTree, ms: number): void {
  clearTimeout(tracked.get(key)?.timer);
  const timer = setTimeout(
    () => {
      tracked.delete(key);
      // Told before the kill: a worker resumed from a pause then reads that it lost the attempt before it sees
      // the attempt's processes end (the kernel readies the pipe first), so it never records their end as a result.
      process.stdout.write(`${JSON.stringify({ op: 'expired', key })}\n`);
      signalTree(tree, 'SIGKILL');
    },
    Math.max(0, ms),
  );
  tracked.set(key, { tree, timer });
}

function handle(m: GuardMessage): void {
  if (m.op === 'track') arm(m.key, m.tree, m.ms);
  else if (m.op === 'deadline') {
    const t = tracked.get(m.key);
    if (t) arm(m.key, t.tree, m.ms);
  } else {
    clearTimeout(tracked.get(m.key)?.timer);
    tracked.delete(m.key);
  }
}

/** The worker is gone: nothing it started may outlive it. */
function endEverything(): void {
  for (const { tree, timer } of tracked.values()) {
    clearTimeout(timer);
    signalTree(tree, 'SIGKILL');
  }
  tracked.clear();
  if (cgroupDir) new CgroupTree(cgroupDir).kill();
  if (workerCookie) signalCookie(WORKER_COOKIE_VAR, workerCookie, 'SIGKILL');
  if (cgroupDir) {
    const cg = new CgroupTree(cgroupDir);
    for (let i = 0; i < 50 && !cg.remove(); i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  }
  process.exit(0);
}

process.on('SIGINT', () => undefined);
process.on('SIGTERM', endEverything);
process.stdout.on('error', () => undefined);
createInterface({ input: process.stdin })
  .on('line', (line) => {
    try {
      handle(JSON.parse(line) as GuardMessage);
    } catch {
      // a torn line from a worker killed mid-write: the close that follows ends everything
    }
  })
  .on('close', endEverything);
