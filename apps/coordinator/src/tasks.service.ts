import { randomUUID } from 'node:crypto';
import { setTimeout } from 'node:timers/promises';
import { Inject, Injectable } from '@nestjs/common';
import type { Job } from 'bullmq';
import { conflict, notFound, unprocessable } from '@fleet/app';
import { seesAllTasks } from '@fleet/auth';
import type { Client } from '@fleet/config';
import { type CoordinatorSettings, COORDINATOR_SETTINGS } from './coordinator-settings.js';
import {
  claimersOf,
  claimStep,
  type FieldError,
  idempotentTaskId,
  outcomesOf,
  pendingClaim,
  newTaskId,
  poolOfTaskId,
  type QueuedTask,
  routeTask,
  type Task,
  type TaskResult,
  type TaskState,
  toQueue,
  toTaskState,
} from '@fleet/contracts';
import { SourceResolver } from './source-resolver.js';
import type { Claim } from './queue-transactions.js';
import { type NewTask, TaskQueueRepository } from './task-queue.repository.js';
import { type TaskView, viewOfCancelled, viewOfJob } from './task-view.js';

export interface Submitted {
  id: string;
  pool: string;
  state: TaskState | 'expired';
  /** True when an earlier task with the same idempotency key was returned instead of a new one. */
  duplicate: boolean;
}

/** The BullMQ states behind each task state a client asks for (cancelled tasks are not in any queue). */
const QUEUE_STATES_OF: Record<Exclude<TaskState, 'cancelled'>, string[]> = {
  queued: ['waiting', 'prioritized', 'delayed'],
  active: ['active'],
  completed: ['completed'],
  failed: ['failed'],
};

/** How long a request waits for another request to queue the task of a key they share (then 409). */
const CLAIM_WAIT_MS = 10_000;
const CLAIM_RETRY_MS = 25;

type Found = { job: Job<QueuedTask, TaskResult>; pool: string; state: string } | { cancelled: TaskView };

@Injectable()
export class TasksService {
  constructor(
    @Inject(COORDINATOR_SETTINGS) private readonly settings: CoordinatorSettings,
    private readonly repo: TaskQueueRepository,
    private readonly sources: SourceResolver,
  ) {}

  /** Test tasks that name a source get its commit as a sha, checked against their pool's allow-list. */
  private async resolveSources(routed: NewTask[], fieldOf: (i: number) => string): Promise<NewTask[]> {
    return Promise.all(
      routed.map(async (t, i) => {
        const template = this.settings.templates.find((x) => x.pool === t.pool);
        return template ? { ...t, task: await this.sources.resolveTask(t.task, template, fieldOf(i)) } : t;
      }),
    );
  }

  /** Routes every task to a pool; refuses the whole list (422) if any task fits no pool. */
  private route(tasks: readonly Task[], fieldOf: (i: number) => string): NewTask[] {
    const errors: FieldError[] = [];
    const routed = tasks.map((task, i) => {
      const r = routeTask(task, this.settings.templates);
      if (!r.ok) errors.push({ field: fieldOf(i), reason: r.reason });
      return { id: r.ok ? newTaskId(r.pool) : '', pool: r.ok ? r.pool : '', task };
    });
    if (errors.length > 0) throw unprocessable(errors);
    return routed;
  }

  async submit(task: Task, client: Client): Promise<Submitted> {
    const [one] = await this.enqueue(
      await this.resolveSources(
        this.route([task], () => 'hardware_requirements'),
        () => 'config.source',
      ),
      client,
    );
    return one;
  }

  async submitBatch(tasks: readonly Task[], client: Client): Promise<Submitted[]> {
    return this.enqueue(
      await this.resolveSources(
        this.route(tasks, (i) => `tasks[${i}].hardware_requirements`),
        (i) => `tasks[${i}].config.source`,
      ),
      client,
    );
  }

  /**
   * Settles the request's idempotency keys, then queues what is new, all pools and every key in one
   * transaction. Keys belong to the client that sent them: no client can claim or learn another's. A task with
   * a key gets the id derived from the client, its pool and the key. The first task with a key claims it; a task
   * whose key is held already (by an earlier request, or earlier in this batch) returns the holder instead of
   * being queued. A key that another request is queueing under right now is waited for (`settleKeys`), so
   * racing requests whose tasks route to different pools still make one job.
   */
  private async enqueue(routed: NewTask[], client: Client): Promise<Submitted[]> {
    for (const t of routed) if (t.task.idempotency_key !== undefined) t.id = idempotentTaskId(t.pool, client.name, t.task.idempotency_key);
    const keyed = routed.map((t, i) => ({ id: t.id, key: t.task.idempotency_key, i }));
    const request = randomUUID();
    const claims = [...claimersOf(keyed)].map(([key, t]) => ({ key, id: t.id, pending: pendingClaim(request, t.id) }));
    const holders = await this.settleKeys(client.name, claims);
    const won = claims.filter((c) => !holders.has(c.key));
    try {
      await this.repo.enqueue(
        toQueue(keyed, holders).map((k) => routed[k.i]),
        won,
        client.name,
      );
    } catch (err) {
      // Given back so a corrected or later request can use the keys; if even that fails, they lapse on their own.
      await this.repo.releaseClaims(client.name, won).catch(() => undefined);
      throw err;
    }
    const described = new Map<string, Promise<Submitted>>();
    return Promise.all(
      outcomesOf(keyed, holders).map((o, i): Promise<Submitted> => {
        const pool = routed[i].pool;
        if (o.kind === 'queued') return Promise.resolve({ id: o.id, pool, state: 'queued', duplicate: false });
        if (o.kind === 'same-request') return Promise.resolve({ id: o.id, pool: poolOfTaskId(o.id) ?? pool, state: 'queued', duplicate: true });
        if (!described.has(o.id)) described.set(o.id, this.describe(o.id));
        return described.get(o.id) as Promise<Submitted>;
      }),
    );
  }

  /**
   * Takes each key with a pending claim, or learns the task an earlier request committed it to (returned: key →
   * that task). When another request's claim on one of the keys is still pending, this request gives back what
   * it took (so two requests never wait for each other), waits and tries again, for at most CLAIM_WAIT_MS; then
   * answers 409.
   */
  private async settleKeys(client: string, claims: readonly Claim[]): Promise<Map<string, string>> {
    const deadline = Date.now() + CLAIM_WAIT_MS;
    for (;;) {
      const previous = await this.repo.tryClaims(client, claims);
      const steps = claims.map((c, i) => claimStep(previous[i] ?? null, c.pending));
      const waitFor = claims.filter((_, i) => steps[i]?.kind === 'wait');
      if (waitFor.length === 0) {
        return new Map(
          claims.flatMap((c, i) => {
            const s = steps[i];
            return s?.kind === 'duplicate' ? [[c.key, s.of] as const] : [];
          }),
        );
      }
      await this.repo.releaseClaims(
        client,
        claims.filter((_, i) => steps[i]?.kind === 'claim'),
      );
      if (Date.now() >= deadline) {
        throw Object.assign(conflict('idempotency_key', `another request is still queueing the task of key "${waitFor[0]?.key}"; retry`), {
          retryAfterS: 1,
        });
      }
      await setTimeout(CLAIM_RETRY_MS);
    }
  }

  private async describe(id: string): Promise<Submitted> {
    const pool = poolOfTaskId(id) ?? '';
    let found = await this.find(id);
    // A key's task may still be pending (a batch over spread pools whose coordinator died part way): queue it now.
    if (found === undefined && (await this.repo.settlePending(0, id)) > 0) found = await this.find(id);
    const state: Submitted['state'] = found === undefined ? 'expired' : 'cancelled' in found ? 'cancelled' : (toTaskState(found.state) ?? 'queued');
    return { id, pool, state, duplicate: true };
  }

  private async find(id: string): Promise<Found | undefined> {
    const pool = poolOfTaskId(id);
    if (pool === undefined || !this.repo.hasPool(pool)) return undefined;
    const found = await this.repo.getJob(pool, id);
    if (found) return { ...found, pool };
    const cancelled = await this.repo.getCancelled(id);
    return cancelled ? { cancelled: viewOfCancelled(cancelled) } : undefined;
  }

  /** The task, if this client may see it: a client that only submits sees its own, and another's is as if absent. */
  private async findFor(id: string, client: Client): Promise<Found> {
    const found = await this.find(id);
    const owner = found && ('cancelled' in found ? found.cancelled.submitted_by : (found.job.data.submitted_by ?? 'anonymous'));
    if (!found || (!seesAllTasks(client) && owner !== client.name)) throw notFound('id', `no task with id "${id}"`);
    return found;
  }

  /**
   * The newest tasks (by when they last changed: finished, started or queued), of one pool or all, in one state
   * or all; a client that only submits sees its own.
   */
  async recent(client: Client, q: { pool?: string; state?: Exclude<TaskState, 'cancelled'>; limit: number }): Promise<TaskView[]> {
    if (q.pool !== undefined && !this.repo.hasPool(q.pool)) throw notFound('pool', `no pool "${q.pool}" (pools: ${this.repo.pools.join(', ')})`);
    const states = q.state ? QUEUE_STATES_OF[q.state] : Object.values(QUEUE_STATES_OF).flat();
    const found = await this.repo.recentJobs(q.pool ? [q.pool] : this.repo.pools, states, q.limit);
    const changed = (j: Job) => j.finishedOn ?? j.processedOn ?? j.timestamp;
    return found
      .filter((f) => seesAllTasks(client) || (f.job.data.submitted_by ?? 'anonymous') === client.name)
      .sort((a, b) => changed(b.job) - changed(a.job))
      .slice(0, q.limit)
      .map((f) => viewOfJob(f.job, f.pool, f.state));
  }

  async get(id: string, client: Client): Promise<TaskView> {
    const found = await this.findFor(id, client);
    return 'cancelled' in found ? found.cancelled : viewOfJob(found.job, found.pool, found.state);
  }

  async cancel(id: string, client: Client): Promise<TaskView> {
    const found = await this.findFor(id, client);
    if ('cancelled' in found) return found.cancelled;
    const view = viewOfJob(found.job, found.pool, found.state);
    if (view.state === 'active') {
      throw conflict('id', `task is running on worker ${view.worker_id ?? '(unknown)'} and cannot be cancelled; only queued tasks can be`);
    }
    if (view.state !== 'queued') throw conflict('id', `task has already finished (${view.state}); only queued tasks can be cancelled`);
    const record = {
      id,
      pool: found.pool,
      name: view.name,
      type: view.type,
      priority: view.priority,
      labels: view.labels,
      submitted_by: view.submitted_by,
      queued_at: found.job.timestamp,
      cancelled_at: Date.now(),
    };
    if (!(await this.repo.cancel(found.job, record))) {
      throw conflict('id', 'task was picked up by a worker just now and cannot be cancelled; only queued tasks can be');
    }
    return viewOfCancelled(record);
  }
}
