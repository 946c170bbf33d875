import { Job, type JobsOptions, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';

/**
 * Every use the fleet makes of BullMQ's surface outside its documented API, in one place. Each one is what
 * makes a guarantee possible that the documented API cannot give (tasks and idempotency claims in one
 * transaction; a backlog that counts due retries). They were written against BullMQ 6.7: package.json pins
 * `~6.7.0`, and `test/integration/bullmq-internals.integration-spec.ts` checks each against a real Redis and
 * fails when the installed minor version is another. Moving BullMQ means reading its changes for these.
 */
export const BULLMQ_WRITTEN_FOR = '6.7';

/** A Redis transaction as ioredis builds it. */
export type Transaction = ReturnType<Redis['multi']>;

/** A job to queue inside a transaction. */
export interface TransactionJob {
  id: string;
  name: string;
  data: Record<string, unknown>;
  opts: JobsOptions;
}

/**
 * A MULTI that BullMQ's insert scripts can join (`addToTransaction`), on `connection`: one on which they are
 * defined, the queues' own or one given them by `defineInsertScripts`. On a cluster it goes to the node of the
 * first key it is given. Undocumented: the transaction's `runCommand`, through which BullMQ's backend runs a
 * script on it.
 */
export function queueTransaction(connection: Redis): Transaction {
  const multi = connection.multi();
  return Object.assign(multi, {
    runCommand(name: string, args: unknown[]) {
      (multi as unknown as Record<string, (a: unknown[]) => unknown>)[name](args);
      return multi;
    },
  });
}

/**
 * Defines on `target` BullMQ's job-insert scripts as a ready queue defined them on `source`, and no other
 * script. ioredis copies every script of a connection onto each MULTI built on it, two properties each: on the
 * queues' own connection (BullMQ's ~100 scripts) that cost a queueing request about 0.1 ms of CPU and 20 KB of
 * garbage, a sixth of what the request allocates. Undocumented: ioredis's `scriptsSet`, and BullMQ's script
 * names (see `loadInsertScripts`).
 */
export function defineInsertScripts(source: Redis, target: Redis): string[] {
  const inserts = insertScriptsOf(source);
  for (const [name, s] of inserts) if (!(name in target)) target.defineCommand(name, { lua: s.lua, numberOfKeys: s.numberOfKeys ?? undefined });
  return inserts.map(([name]) => name);
}

function insertScriptsOf(redis: Redis): Array<[string, { lua: string; numberOfKeys: number | null }]> {
  const scripts = (redis as unknown as { scriptsSet?: Record<string, { lua: string; numberOfKeys: number | null }> }).scriptsSet ?? {};
  const inserts = Object.entries(scripts).filter(([name]) => /^add\w*Job:/.test(name));
  if (inserts.length === 0) throw new Error("BullMQ's insert scripts are not defined on this connection (no queue on it is ready yet?)");
  return inserts;
}

/**
 * Queues a job on a transaction: the command is part of the MULTI once the promise resolves (await it before
 * `exec`); the job's id is the one given. Undocumented: `Job.toFlowEntry` and
 * `RedisQueueBackend.addJobToTransaction` (public for FlowProducer, outside the backend interface).
 */
export async function addToTransaction(queue: Queue, multi: Transaction, job: TransactionJob): Promise<void> {
  const entry = new Job(queue, job.name, job.data, job.opts, job.id).toFlowEntry();
  await queue.backend.addJobToTransaction(multi as never, entry.jobData, entry.jobId);
}

/**
 * Loads BullMQ's job-insert scripts into Redis explicitly, and returns their names. Inside a MULTI they run
 * as EVALSHA once a connection has sent them, and a NOSCRIPT there fails those commands alone (ioredis then
 * sends them again outside the transaction); ioredis counts a script as sent even in a transaction Redis then
 * refused (out of memory), and Redis forgets scripts on SCRIPT FLUSH. Undocumented: ioredis's `scriptsSet`,
 * and BullMQ's script names (`addStandardJob:…`, `addPrioritizedJob:…`, `addDelayedJob:…`, `addParentJob:…`),
 * defined on a connection once a queue on it is ready.
 */
export async function loadInsertScripts(redis: Redis): Promise<string[]> {
  const inserts = insertScriptsOf(redis);
  await Promise.all(inserts.map(([, s]) => redis.script('LOAD', s.lua)));
  return inserts.map(([name]) => name);
}

/**
 * The highest score in a queue's `delayed` sorted set of a job due at or before `ms`: BullMQ scores a delayed
 * job by its due time in ms × 0x1000, plus a counter below 0x1000. Undocumented.
 */
export function delayedScoreDueBy(ms: number): number {
  return (ms + 1) * 0x1000 - 1;
}

/**
 * BullMQ's sorted sets that hold a queue's jobs not yet picked up besides the wait list: prioritized, delayed
 * (and retries in backoff), and parents waiting for their children. Undocumented key names, under
 * `<prefix>:<queue>:`.
 */
export const NOT_YET_PICKED_SETS = ['prioritized', 'delayed', 'waiting-children'] as const;
