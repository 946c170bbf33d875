/**
 * Idempotency keys, as pure decisions. A key belongs to the client that sent it. A request first takes each
 * of its keys with a *pending* claim (`pending:<request id> <task id>`, short-lived), queues the tasks whose keys it won, and
 * turns each claim into a committed one (the bare task id) in the same transaction that queues the task. So a
 * key names at most one job, whatever pools racing requests' tasks route to: a request that meets a pending
 * claim waits for it to be committed (or to lapse) before it queues anything.
 */

/** The prefix of a claim whose request has not queued its task yet. */
export const PENDING_CLAIM = 'pending:';

/** A task of a request, by its id and its idempotency key (if any). */
export interface KeyedTask {
  id: string;
  key?: string;
}

/** The value of a request's pending claim on a key for a task (two requests for one task differ by request). */
export function pendingClaim(requestId: string, taskId: string): string {
  return `${PENDING_CLAIM}${requestId} ${taskId}`;
}

/** What a claim's value in Redis says. */
export type ClaimValue = { kind: 'free' } | { kind: 'committed'; id: string } | { kind: 'pending'; request: string; id: string };

export function readClaim(value: string | null): ClaimValue {
  if (value === null) return { kind: 'free' };
  if (!value.startsWith(PENDING_CLAIM)) return { kind: 'committed', id: value };
  const [request = '', id = ''] = value.slice(PENDING_CLAIM.length).split(' ');
  return { kind: 'pending', request, id };
}

/** The first task with each key claims it; later tasks of the same request with that key follow it. */
export function claimersOf<T extends KeyedTask>(tasks: readonly T[]): Map<string, T> {
  const claimers = new Map<string, T>();
  for (const t of tasks) if (t.key !== undefined && !claimers.has(t.key)) claimers.set(t.key, t);
  return claimers;
}

/**
 * What a request does with a key after trying to claim it (`SET NX GET`; `previous` is what the key held):
 * won it (`claim`), found it committed to a task (`duplicate` of that task), or found another request's claim
 * still pending (`wait`, then try again).
 */
export type ClaimStep = { kind: 'claim' } | { kind: 'duplicate'; of: string } | { kind: 'wait'; of: string };

export function claimStep(previous: string | null, ownPending: string): ClaimStep {
  // Free, or this request's own pending claim seen again on a retry of the claim step: its to queue.
  if (previous === null || previous === ownPending) return { kind: 'claim' };
  const v = readClaim(previous);
  return v.kind === 'pending' ? { kind: 'wait', of: v.id } : { kind: 'duplicate', of: previous };
}

/** What the client is told of each task of its request. */
export type Outcome =
  | { kind: 'queued'; id: string }
  /** Its key names a task queued by this same request (an earlier task of the batch). */
  | { kind: 'same-request'; id: string }
  /** Its key names a task an earlier request queued: the client gets that task's state. */
  | { kind: 'earlier-request'; id: string };

/**
 * Each task's outcome, in order, once every key is settled: `holders` maps a key to the task an earlier
 * request committed it to; keys not in it were claimed by this request (its first task with the key).
 */
export function outcomesOf(tasks: readonly KeyedTask[], holders: ReadonlyMap<string, string>): Outcome[] {
  const claimers = claimersOf(tasks);
  return tasks.map((t) => {
    if (t.key === undefined) return { kind: 'queued', id: t.id };
    const holder = holders.get(t.key);
    if (holder !== undefined) return { kind: 'earlier-request', id: holder };
    const claimer = claimers.get(t.key) as KeyedTask;
    return claimer === t ? { kind: 'queued', id: t.id } : { kind: 'same-request', id: claimer.id };
  });
}

/** The tasks a request queues: those without a key, and each key's claimer when this request won the key. */
export function toQueue<T extends KeyedTask>(tasks: readonly T[], holders: ReadonlyMap<string, string>): T[] {
  const claimers = claimersOf(tasks);
  return tasks.filter((t) => t.key === undefined || (claimers.get(t.key) === t && !holders.has(t.key)));
}
