/** One of this host's own worker processes, as its resource manager's supervisor knows it. */
export interface OwnWorker {
  id: string;
  state: 'starting' | 'ready' | 'draining';
}

/** What a host does for one pool on a tick: start `start` workers, stop the listed ones, and why. */
export interface HostPoolAction {
  start: number;
  stop: string[];
  outcome: string;
}

/**
 * Which of this host's workers to stop, up to `n` of them: idle ones first, then ones still starting, then the
 * least busy (`load`: tasks each holds, by worker id, as its last heartbeat said). With `idleOnly` (DEMAND
 * pools), a worker that holds a task is never chosen: the pool stays above its quota until enough are idle
 * (the next tick looks again). Draining ones are already going.
 */
export function pickToStop(own: readonly OwnWorker[], load: ReadonlyMap<string, number>, n: number, idleOnly = false): string[] {
  const tasks = (w: OwnWorker) => (w.state === 'starting' ? 0 : (load.get(w.id) ?? 0));
  // Idle 0, starting 0.5, busy 1 + its tasks.
  const rank = (w: OwnWorker) => (w.state === 'starting' ? 0.5 : tasks(w) === 0 ? 0 : 1 + tasks(w));
  return own
    .filter((w) => w.state !== 'draining' && !(idleOnly && tasks(w) > 0))
    .sort((a, b) => rank(a) - rank(b))
    .slice(0, Math.max(0, n))
    .map((w) => w.id);
}

/**
 * Meets this host's quota for a pool. `alive` counts every live worker process of the pool on every host,
 * draining ones included, and never goes above `maxWorkers`; `blocked` (a crash loop's back-off) starts none.
 */
export function applyQuota(o: {
  quota: number;
  own: readonly OwnWorker[];
  load: ReadonlyMap<string, number>;
  maxWorkers: number;
  alive: number;
  blocked?: string;
  /** Stop only workers that hold no task (DEMAND pools). */
  idleOnly?: boolean;
}): HostPoolAction {
  const active = o.own.filter((w) => w.state !== 'draining');
  if (o.quota > active.length) {
    const room = Math.max(0, o.maxWorkers - o.alive);
    const n = o.blocked ? 0 : Math.min(o.quota - active.length, room);
    const outcome = o.blocked
      ? `not starting: ${o.blocked}`
      : n < o.quota - active.length
        ? `started ${n}: only room for ${room} under max_workers while others drain`
        : `started ${n}`;
    return { start: n, stop: [], outcome };
  }
  if (o.quota < active.length) {
    const over = active.length - o.quota;
    const stop = pickToStop(active, o.load, over, o.idleOnly);
    const held = over - stop.length;
    return {
      start: 0,
      stop,
      outcome: held > 0 ? `stopping ${stop.length} idle; ${held} more once idle (they hold tasks)` : `stopping ${stop.length}`,
    };
  }
  return { start: 0, stop: [], outcome: 'holding' };
}
