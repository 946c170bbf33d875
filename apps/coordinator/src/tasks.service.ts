import { Inject, Injectable } from '@nestjs/common';
import type { Job } from 'bullmq';
import { conflict, notFound, unprocessable } from '@fleet/app';
import { seesAllTasks } from '@fleet/auth';
import type { Client } from '@fleet/config';
import { type CoordinatorSettings, COORDINATOR_SETTINGS } from './coordinator-settings.js';
import {
  type FieldError,
  idempotentTaskId,
  newTaskId,
  poolOfTaskId,
  type QueuedTask,
  routeTask,
  type Task,
  type TaskResult,
  type TaskState,
  toTaskState,
} from '@fleet/contracts';
import { SourceResolver } from './source-resolver.js';
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
   * Resolves idempotency keys, then queues what is new, all pools and every key claim in one transaction.
   * Keys belong to the client that sent them: no client can claim or learn another's. A task with a key gets
   * the id derived from the client and the key, so the same key can never queue two jobs. The first task
   * with a key claims it; a task whose key is held already (by an earlier request, by a request racing this
   * one, or earlier in this batch) returns the holder instead of being queued again.
   */
  private async enqueue(routed: NewTask[], client: Client): Promise<Submitted[]> {
    const claimers = new Map<string, NewTask>();
    for (const t of routed) {
      const key = t.task.idempotency_key;
      if (key === undefined) continue;
      t.id = idempotentTaskId(t.pool, client.name, key);
      if (!claimers.has(key)) claimers.set(key, t);
    }
    const keys = [...claimers.keys()];
    const holderOf = new Map<string, string>();
    (await this.repo.idempotencyHolders(client.name, keys)).forEach((holder, i) => holder && holderOf.set(keys[i], holder));
    const first = (t: NewTask) => t.task.idempotency_key === undefined || claimers.get(t.task.idempotency_key) === t;
    const fresh = routed.filter((t) => first(t) && !holderOf.has(t.task.idempotency_key ?? ''));
    const claims = keys.filter((k) => !holderOf.has(k)).map((key) => ({ key, id: (claimers.get(key) as NewTask).id }));
    // A request racing this one may have claimed a key between the read and the transaction.
    (await this.repo.enqueue(fresh, claims, client.name)).forEach((holder, i) => holder && holderOf.set((claims[i] as { key: string }).key, holder));
    const queuedNow = new Set(fresh.filter((t) => t.task.idempotency_key === undefined || !holderOf.has(t.task.idempotency_key)).map((t) => t.id));

    const described = new Map<string, Promise<Submitted>>();
    return Promise.all(
      routed.map((t): Promise<Submitted> => {
        if (first(t) && queuedNow.has(t.id)) return Promise.resolve({ id: t.id, pool: t.pool, state: 'queued', duplicate: false });
        const key = t.task.idempotency_key as string;
        const id = holderOf.get(key) ?? (claimers.get(key) as NewTask).id;
        if (queuedNow.has(id)) return Promise.resolve({ id, pool: poolOfTaskId(id) ?? t.pool, state: 'queued', duplicate: true });
        if (!described.has(id)) described.set(id, this.describe(id));
        return described.get(id) as Promise<Submitted>;
      }),
    );
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
