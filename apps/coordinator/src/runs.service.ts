import { Injectable } from '@nestjs/common';
import { conflict } from '@fleet/app';
import type { Client } from '@fleet/config';
import type { Task } from '@fleet/contracts';
import type { RunRequest } from '@fleet/runs';
import { RunPlanner } from './run-planner.js';
import { type RunView, RunViews } from './run-views.js';
import { type RunRecord, RunsRepository } from './runs.repository.js';
import { TaskQueueRepository } from './task-queue.repository.js';

/**
 * Runs: a suite submitted as one unit. RunPlanner makes a run from a request; tasks that wait for others are
 * queued when those have passed (RunsReconciler); RunViews reads a run's state, verdict and JUnit report from
 * the attempts workers record; QuarantineService keeps flakiness across runs. This service is the commands.
 */
@Injectable()
export class RunsService {
  constructor(
    private readonly planner: RunPlanner,
    private readonly views: RunViews,
    private readonly runs: RunsRepository,
    private readonly tasks: TaskQueueRepository,
  ) {}

  async create(spec: RunRequest, client: Client): Promise<{ run: RunView; duplicate: boolean }> {
    const { id, duplicate } = await this.planner.create(spec, client);
    return { run: await this.views.view(id, client, false), duplicate };
  }

  /** Cancels what has not started: queued tasks leave their queues, blocked ones never will; running ones finish. */
  async cancel(id: string, client: Client): Promise<RunView> {
    const run = await this.views.owned(id, client);
    if (run.cancelled_at) return this.views.view(id, client, false);
    if (run.finalized_at) throw conflict('id', `run has already finished (${run.state ?? 'done'})`);
    await this.cancelRun(run, 'the run was cancelled');
    return this.views.view(id, client, false);
  }

  /** Cancels the run's tasks that have not started, each with `reason`. */
  async cancelRun(run: RunRecord, reason: string): Promise<void> {
    const id = run.id;
    await this.runs.markCancelled(id, Date.now());
    const { tasks, attempts } = await this.views.files(run, false);
    const finished = new Set(attempts.filter((a) => a.final).map((a) => a.key));
    for (const [key, t] of tasks) {
      if (t.state === 'cancelled' || finished.has(key)) continue;
      if (t.state === 'blocked') {
        await this.runs.transition(id, key, 'blocked', { ...t, state: 'cancelled', reason });
        continue;
      }
      const found = await this.tasks.getJob(t.pool, t.id);
      if (!found || found.state === 'active') continue;
      if (await this.tasks.cancel(found.job, cancelledRecord(found.job, t.pool, run.submitted_by))) {
        await this.runs.transition(id, key, 'queued', { ...t, state: 'cancelled', reason });
      }
    }
  }
}

function cancelledRecord(job: { id?: string; name: string; data: unknown; timestamp: number }, pool: string, submittedBy: string) {
  const data = job.data as { name?: string; type?: string; priority?: number; labels?: Record<string, string> };
  return {
    id: job.id as string,
    pool,
    name: data.name ?? '',
    type: (data.type ?? 'test') as Task['type'],
    priority: data.priority ?? 0,
    labels: data.labels ?? {},
    submitted_by: submittedBy,
    queued_at: job.timestamp,
    cancelled_at: Date.now(),
  };
}
