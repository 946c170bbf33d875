import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { type CoordinatorSettings, COORDINATOR_SETTINGS } from './coordinator-settings.js';
import type { Task, TestCase } from '@fleet/contracts';
import { bestEffort, createRedis, FleetKeys, trimIndex, unlinkAll, waitUntilReady, WorkerRegistry } from '@fleet/redis';
import type { RunAttempt } from '@fleet/runs';
import { QueueSet } from './queue-set.js';
import type { TransactionExtra } from './task-queue.repository.js';

/** A run as stored: what it was asked to do, by whom, and when it was cancelled or finished. */
export interface RunRecord {
  id: string;
  name: string;
  submitted_by: string;
  created_at: number;
  pool: string;
  retries: number;
  labels: Record<string, string>;
  /** The repository and commit every test file of the run ran at (absent: the pool's workdir). */
  source?: { repo: string; commit: string; ref?: string };
  /** A CI build's run (`fleet run --build`): its files are in its own queue, run by the build's nodes. */
  build?: string;
  /** Why the run was given up (its CI nodes all gone): it ends as `error`. */
  abandoned?: string;
  cancelled_at?: number;
  finalized_at?: number;
  /** The final state, once finalized. */
  state?: string;
  /** How many tasks it was created with, and whether any waits for another (absent in older records). */
  task_count?: number;
  waits?: boolean;
}

/** One task of a run, as stored: its id and pool, what it waits for, and whether it is queued yet. */
export interface RunTaskRecord {
  id: string;
  pool: string;
  /** Keys it waits for; `*` is every test file of the run. */
  deps: string[];
  state: 'queued' | 'blocked' | 'cancelled';
  /** Why it was cancelled (a failed dependency, the run cancelled). */
  reason?: string;
  /** The task to queue once its dependencies have passed (blocked tasks only). */
  task?: Task;
  /** A test file (counts for `*`), or an extra task. */
  file: boolean;
  expected_ms: number;
}

/**
 * BullMQ's state of many jobs of one queue in one call: its own getState's checks, but a job in no set or list
 * but the wait (or paused) list is found by its hash rather than by a scan of that list (LPOS: a scan per job,
 * so a poll of a 5,000-file run waiting for workers cost 5,000 scans of a 5,000-long list).
 * KEYS: completed, failed, delayed, active, waiting-children, prioritized. ARGV: the job key prefix, then ids.
 */
const JOB_STATES = `
local out = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  local s
  if redis.call('ZSCORE', KEYS[1], id) then s = 'completed'
  elseif redis.call('ZSCORE', KEYS[2], id) then s = 'failed'
  elseif redis.call('ZSCORE', KEYS[3], id) then s = 'delayed'
  elseif redis.call('ZSCORE', KEYS[6], id) then s = 'prioritized'
  elseif redis.call('LPOS', KEYS[4], id) then s = 'active'
  elseif redis.call('ZSCORE', KEYS[5], id) then s = 'waiting-children'
  elseif redis.call('EXISTS', ARGV[1] .. id) == 1 then s = 'waiting'
  else s = 'unknown' end
  out[#out + 1] = s
end
return out
`;

/** Jobs asked about per call of JOB_STATES (each call runs atomically: bounded). */
const STATES_PER_CALL = 500;

/** Moves a run task from one state to another only if it is still in the first (several coordinators). */
const TRANSITION = `
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local t = cjson.decode(raw)
if t.state ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
`;

/** The runs' own keys (the run, its tasks, attempts, cases; the run index; flakiness; quarantine). */
@Injectable()
export class RunsRepository implements OnApplicationShutdown {
  private readonly redis: Redis & {
    transitionRunTask(key: string, field: string, from: string, to: string): Promise<number>;
    jobStates(...args: string[]): Promise<string[]>;
  };
  readonly keys: FleetKeys;
  private readonly queues: QueueSet;

  constructor(@Inject(COORDINATOR_SETTINGS) private readonly settings: CoordinatorSettings) {
    this.keys = new FleetKeys(settings.prefix, settings.spread);
    this.redis = createRedis(settings.redisUrl, 'producer', 'coordinator-runs') as RunsRepository['redis'];
    this.redis.defineCommand('transitionRunTask', { numberOfKeys: 1, lua: TRANSITION });
    this.redis.defineCommand('jobStates', { numberOfKeys: 6, lua: JOB_STATES });
    this.queues = new QueueSet(
      this.redis,
      this.keys,
      settings.templates.map((t) => t.pool),
    );
  }

  /** Waits for its connection to Redis (requests are refused until then, not queued). */
  async open(timeoutMs = 10_000): Promise<void> {
    await waitUntilReady(this.redis, this.settings.redisUrl, timeoutMs);
  }

  /** Commands that create a run's record, for the transaction that queues its first tasks. */
  creation(run: RunRecord, tasks: ReadonlyMap<string, RunTaskRecord>): TransactionExtra {
    const k = this.keys;
    const ttl = this.settings.runRetainS;
    return (multi) => {
      const { source, waits, ...fields } = run;
      multi.hset(k.run(run.id), {
        ...fields,
        labels: JSON.stringify(run.labels),
        ...(source && { source: JSON.stringify(source) }),
        ...(waits !== undefined && { waits: waits ? '1' : '0' }),
      });
      multi.hset(k.runTasks(run.id), Object.fromEntries([...tasks].map(([key, t]) => [key, JSON.stringify(t)])));
      // Workers record attempts only into a run that exists: these placeholders make it exist from the start.
      multi.hset(k.runAttempts(run.id), { _: '1' });
      multi.hset(k.runCases(run.id), { _: '1' });
      for (const key of [k.run(run.id), k.runTasks(run.id), k.runAttempts(run.id), k.runCases(run.id)]) multi.expire(key, ttl);
      multi.zadd(k.runs, run.created_at, run.id);
      multi.zremrangebyrank(k.runs, 0, -10_001);
      multi.sadd(k.activeRuns, run.id);
    };
  }

  /** Claims the creation of run `id` for this request (SET NX): true for the first of racing requests. */
  async claim(id: string, ttlS: number): Promise<boolean> {
    return (await this.redis.set(this.keys.runClaim(id), String(process.pid), 'EX', ttlS, 'NX')) === 'OK';
  }

  /** Gives a claim back (the request that held it failed before the run was recorded). */
  async unclaim(id: string): Promise<void> {
    await this.redis.del(this.keys.runClaim(id));
  }

  async run(id: string): Promise<RunRecord | undefined> {
    const h = await this.redis.hgetall(this.keys.run(id));
    if (!h.id) return undefined;
    return {
      id: h.id,
      name: h.name ?? '',
      submitted_by: h.submitted_by ?? 'anonymous',
      created_at: Number(h.created_at),
      pool: h.pool ?? '',
      retries: Number(h.retries ?? 0),
      labels: JSON.parse(h.labels ?? '{}') as Record<string, string>,
      ...(h.source && { source: JSON.parse(h.source) as NonNullable<RunRecord['source']> }),
      ...(h.build && { build: h.build }),
      ...(h.abandoned && { abandoned: h.abandoned }),
      ...(h.cancelled_at && { cancelled_at: Number(h.cancelled_at) }),
      ...(h.finalized_at && { finalized_at: Number(h.finalized_at) }),
      ...(h.state && { state: h.state }),
      ...(h.task_count && { task_count: Number(h.task_count) }),
      ...(h.waits && { waits: h.waits === '1' }),
    };
  }

  /** The most recent runs, newest first. */
  async recent(limit: number): Promise<RunRecord[]> {
    const ids = await this.redis.zrevrange(this.keys.runs, 0, limit - 1);
    const runs = await Promise.all(ids.map((id) => this.run(id)));
    return runs.filter((r): r is RunRecord => r !== undefined);
  }

  async tasks(id: string): Promise<Map<string, RunTaskRecord>> {
    const raw = await this.redis.hgetall(this.keys.runTasks(id));
    return new Map(Object.entries(raw).map(([k, v]) => [k, JSON.parse(v) as RunTaskRecord]));
  }

  /** Every attempt recorded for the run (with each one's test cases when asked). */
  async attempts(id: string, withCases: boolean): Promise<RunAttempt[]> {
    const [raw, cases] = await Promise.all([
      this.redis.hgetall(this.keys.runAttempts(id)),
      withCases ? this.redis.hgetall(this.keys.runCases(id)) : Promise.resolve<Record<string, string>>({}),
    ]);
    return (
      Object.entries(raw)
        // Fields of attempts are `<attempt>:<key>`; `_` and `_finals` are the run's own.
        .filter(([field]) => !field.startsWith('_'))
        .map(([field, v]) => ({ ...(JSON.parse(v) as RunAttempt), ...(cases[field] && { cases: JSON.parse(cases[field]) as TestCase[] }) }))
    );
  }

  /**
   * BullMQ's state of each task (`active`, `prioritized`, `waiting`, … or `unknown` when the job is gone): one
   * script call per pool and 500 tasks, not one per task.
   */
  async liveStates(tasks: ReadonlyArray<{ id: string; pool: string }>): Promise<string[]> {
    const out: string[] = tasks.map(() => 'unknown');
    const byPool = new Map<string, number[]>();
    tasks.forEach((t, i) => {
      const list = byPool.get(t.pool);
      if (list) list.push(i);
      else byPool.set(t.pool, [i]);
    });
    const calls: Array<Promise<void>> = [];
    for (const [pool, indexes] of byPool) {
      const queue = this.queues.find(pool);
      if (!queue) continue;
      const k = queue.keys;
      const keys = [k.completed, k.failed, k.delayed, k.active, k['waiting-children'], k.prioritized];
      for (let from = 0; from < indexes.length; from += STATES_PER_CALL) {
        const chunk = indexes.slice(from, from + STATES_PER_CALL);
        calls.push(
          this.redis.jobStates(...keys, queue.toKey(''), ...chunk.map((i) => tasks[i].id)).then((states) => {
            chunk.forEach((i, j) => (out[i] = states[j] ?? 'unknown'));
          }),
        );
      }
    }
    await Promise.all(calls);
    return out;
  }

  /** Task slots of the pool's live workers (for a run's ETA). */
  async workerSlots(pool: string): Promise<number> {
    const workers = await new WorkerRegistry(this.redis, this.keys).list();
    return workers.filter((w) => w.pool === pool && w.status === 'running').reduce((n, w) => n + w.concurrency, 0);
  }

  /** Moves a task from `from` to the record `to` if it is still in `from`; true when this call moved it. */
  async transition(runId: string, key: string, from: RunTaskRecord['state'], to: RunTaskRecord): Promise<boolean> {
    return (await this.redis.transitionRunTask(this.keys.runTasks(runId), key, from, JSON.stringify(to))) === 1;
  }

  async markCancelled(runId: string, at: number): Promise<void> {
    await this.redis.hsetnx(this.keys.run(runId), 'cancelled_at', String(at));
  }

  /** A CI node of the run asked for work or renewed a file now. */
  async nodeSeen(runId: string, node: string, at: number): Promise<void> {
    const key = this.keys.runNodes(runId);
    await this.redis.multi().hset(key, node, String(at)).expire(key, this.settings.runRetainS).exec();
  }

  /** When any of the run's CI nodes was last seen (0: never). */
  async nodesLastSeen(runId: string): Promise<{ at: number; nodes: number }> {
    const seen = Object.values(await this.redis.hgetall(this.keys.runNodes(runId))).map(Number);
    return { at: Math.max(0, ...seen), nodes: seen.length };
  }

  /** Marks a run given up, with why (it ends as `error`); what has not run is then cancelled. */
  async abandon(runId: string, why: string): Promise<void> {
    await this.redis.hsetnx(this.keys.run(runId), 'abandoned', why);
  }

  /** A finished build's queue, to be removed once no node can still be reporting to it. */
  async dropQueueLater(queue: string, at: number): Promise<void> {
    await this.redis.zadd(this.keys.ciQueuesToDrop, at, queue);
  }

  /** The finished builds' queues due for removal (finished before `before`), taken off the list. */
  async queuesToDrop(before: number): Promise<string[]> {
    const due = await this.redis.zrangebyscore(this.keys.ciQueuesToDrop, 0, before, 'LIMIT', 0, 100);
    if (due.length > 0) await this.redis.zrem(this.keys.ciQueuesToDrop, ...due);
    return due;
  }

  /** Marks the run finished with its state; true for the one caller that did (flakiness is counted once). */
  async finalize(runId: string, state: string, at: number): Promise<boolean> {
    const first = (await this.redis.hsetnx(this.keys.run(runId), 'finalized_at', String(at))) === 1;
    if (first)
      await this.redis
        .multi()
        .hset(this.keys.run(runId), 'state', state)
        .srem(this.keys.activeRuns, runId)
        .zadd(this.keys.finishedRuns, at, runId)
        .exec();
    return first;
  }

  /** Keeps at most RUN_RETAIN_COUNT finished runs: the oldest finished go, records and all. Returns how many went. */
  async trimFinished(): Promise<number> {
    const gone = await trimIndex(this.redis, this.keys.finishedRuns, this.settings.runRetainCount);
    if (gone.length === 0) return 0;
    const k = this.keys;
    await unlinkAll(
      this.redis,
      gone.flatMap((id) => [k.run(id), k.runTasks(id), k.runAttempts(id), k.runCases(id), k.runNodes(id)]),
    );
    await this.redis.zrem(k.runs, ...gone);
    return gone.length;
  }

  async activeRuns(): Promise<string[]> {
    return this.redis.smembers(this.keys.activeRuns);
  }

  /** A run whose keys expired or were deleted leaves the active set. */
  async forget(runId: string): Promise<void> {
    await this.redis.srem(this.keys.activeRuns, runId);
  }

  /** Expected duration (ms) of each test file in the pool, from the trend analyzer's history (null when none). */
  async expectedDurations(pool: string, files: readonly string[]): Promise<Array<number | null>> {
    if (files.length === 0) return [];
    return (await this.redis.hmget(this.keys.testDurations, ...files.map((f) => `${pool}|${f}`))).map((v) => (v === null ? null : Number(v)));
  }

  /** Counts each test of a finished run: seen once more, flaky once more if it was. */
  async countFlakiness(tests: ReadonlyArray<{ id: string; flaky: boolean }>, runId: string, at: number): Promise<void> {
    if (tests.length === 0) return;
    const current = await this.redis.hmget(this.keys.flaky, ...tests.map((t) => t.id));
    const multi = this.redis.multi();
    tests.forEach((t, i) => {
      const c = current[i] ? (JSON.parse(current[i]) as FlakyRecord) : { runs: 0, flaky: 0, last_seen: 0, last_flaky: null, last_flaky_run: null };
      const next: FlakyRecord = {
        runs: c.runs + 1,
        flaky: c.flaky + (t.flaky ? 1 : 0),
        last_seen: at,
        last_flaky: t.flaky ? at : c.last_flaky,
        last_flaky_run: t.flaky ? runId : c.last_flaky_run,
      };
      multi.hset(this.keys.flaky, t.id, JSON.stringify(next));
      multi.zadd(this.keys.flakySeen, at, t.id);
      if (next.flaky > 0) multi.sadd(this.keys.flakyTests, t.id);
    });
    await multi.exec();
    // At most FLAKY_MAX_TESTS tests: those no run has seen for longest go.
    const gone = await trimIndex(this.redis, this.keys.flakySeen, this.settings.flakyMaxTests);
    for (let i = 0; i < gone.length; i += 500) {
      const part = gone.slice(i, i + 500);
      await this.redis
        .multi()
        .hdel(this.keys.flaky, ...part)
        .srem(this.keys.flakyTests, ...part)
        .exec();
    }
  }

  /** The tests that have been flaky, with their counts (never the whole index). */
  async flakiness(): Promise<Map<string, FlakyRecord>> {
    const tests = await this.redis.smembers(this.keys.flakyTests);
    const raw = tests.length === 0 ? [] : await this.redis.hmget(this.keys.flaky, ...tests);
    return new Map(tests.flatMap((t, i) => (raw[i] ? [[t, JSON.parse(raw[i]) as FlakyRecord] as const] : [])));
  }

  async quarantined(): Promise<Map<string, QuarantineRecord>> {
    const raw = await this.redis.hgetall(this.keys.quarantine);
    return new Map(Object.entries(raw).map(([k, v]) => [k, JSON.parse(v) as QuarantineRecord]));
  }

  async quarantine(test: string, record: QuarantineRecord): Promise<void> {
    await this.redis.hset(this.keys.quarantine, test, JSON.stringify(record));
  }

  async release(test: string): Promise<boolean> {
    return (await this.redis.hdel(this.keys.quarantine, test)) === 1;
  }

  async onApplicationShutdown(): Promise<void> {
    await bestEffort(this.queues.close(), 'closing the queues');
    await bestEffort(this.redis.quit(), 'QUIT');
    this.redis.disconnect();
  }
}

export interface FlakyRecord {
  runs: number;
  flaky: number;
  last_seen: number;
  last_flaky: number | null;
  last_flaky_run: string | null;
}

export interface QuarantineRecord {
  by: string;
  at: number;
  reason: string;
}
