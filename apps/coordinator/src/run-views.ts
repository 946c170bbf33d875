import { Inject, Injectable } from '@nestjs/common';
import { notFound } from '@fleet/app';
import { seesAllTasks } from '@fleet/auth';
import type { Client } from '@fleet/config';
import {
  buildJUnit,
  countFiles,
  etaSeconds,
  type FileResult,
  fileResult,
  type LiveState,
  type RunAttempt,
  type RunCounts,
  type RunState,
  runState,
} from '@fleet/runs';
import { type CoordinatorSettings, COORDINATOR_SETTINGS } from './coordinator-settings.js';
import { type RunRecord, RunsRepository, type RunTaskRecord } from './runs.repository.js';
import type { ResolvedSource } from './source-resolver.js';

export interface RunView {
  id: string;
  name: string;
  state: RunState;
  submitted_by: string;
  created_at: string;
  finished_at: string | null;
  labels: Record<string, string>;
  pool: string;
  /** The repository and commit the run tests (`ref`: the branch or tag it was asked by), or null for the pool's workdir. */
  source: ResolvedSource | null;
  counts: RunCounts;
  /** Done of total, 0..1. */
  progress: number;
  eta_s: number | null;
  flaky: string[];
  files: Array<Omit<FileResult, 'cases'> & { cases?: FileResult['cases']; case_counts: Record<string, number> }>;
}

const LIVE: Record<string, LiveState> = {
  active: 'running',
  waiting: 'queued',
  prioritized: 'queued',
  delayed: 'queued',
  'waiting-children': 'queued',
};

/** What a client reads of runs: one run with its files (and their cases), the list, the JUnit report. */
@Injectable()
export class RunViews {
  constructor(
    @Inject(COORDINATOR_SETTINGS) private readonly settings: CoordinatorSettings,
    private readonly runs: RunsRepository,
  ) {}

  /** The run, if the client may see it (a 404 otherwise). */
  async owned(id: string, client: Client): Promise<RunRecord> {
    const run = await this.runs.run(id);
    if (!run || (!seesAllTasks(client) && run.submitted_by !== client.name)) throw notFound('id', `no run with id "${id}"`);
    return run;
  }

  /** Every file's result, from its attempts and, while it has no final one, from BullMQ and the run's record. */
  async files(run: RunRecord, withCases: boolean): Promise<{ files: FileResult[]; tasks: Map<string, RunTaskRecord>; attempts: RunAttempt[] }> {
    const [tasks, attempts, quarantine] = await Promise.all([
      this.runs.tasks(run.id),
      this.runs.attempts(run.id, withCases),
      this.runs.quarantined(),
    ]);
    const byKey = new Map<string, RunAttempt[]>();
    for (const a of attempts) byKey.set(a.key, [...(byKey.get(a.key) ?? []), a]);
    const unfinished = [...tasks].filter(([key, t]) => t.state === 'queued' && !byKey.get(key)?.some((a) => a.final));
    const states = await this.runs.liveStates(unfinished.map(([, t]) => t));
    const live = new Map(unfinished.map(([key], i) => [key, states[i]]));
    const files = [...tasks].map(([key, t]) => {
      const liveState: LiveState | undefined =
        t.state === 'blocked'
          ? 'blocked'
          : t.state === 'cancelled'
            ? 'cancelled'
            : live.has(key)
              ? (LIVE[live.get(key) as string] ?? 'cancelled')
              : undefined;
      const reason =
        t.state === 'cancelled'
          ? t.reason
          : live.get(key) === 'unknown'
            ? 'its task is gone from Redis (removed, or Redis lost its data)'
            : undefined;
      return fileResult(key, { id: t.id, pool: t.pool }, byKey.get(key) ?? [], liveState, (test) => quarantine.has(test), reason);
    });
    return { files, tasks, attempts };
  }

  async view(id: string, client: Client, withCases: boolean): Promise<RunView> {
    const run = await this.owned(id, client);
    const { files, tasks } = await this.files(run, withCases);
    const counts = countFiles(files);
    const state = (run.state as RunState | undefined) ?? runState(files, run.cancelled_at !== undefined);
    const left = files
      .filter((f) => f.state === 'queued' || f.state === 'running' || f.state === 'blocked')
      .map((f) => ({ expectedMs: tasks.get(f.key)?.expected_ms ?? this.settings.runDefaultTestMs }));
    const slots = await this.runs.workerSlots(run.pool);
    return {
      id: run.id,
      name: run.name,
      state,
      submitted_by: run.submitted_by,
      created_at: new Date(run.created_at).toISOString(),
      finished_at: run.finalized_at ? new Date(run.finalized_at).toISOString() : null,
      labels: run.labels,
      pool: run.pool,
      source: run.source ?? null,
      counts,
      progress: counts.total === 0 ? 1 : counts.done / counts.total,
      eta_s: state === 'queued' || state === 'running' ? etaSeconds(left, slots) : 0,
      // Files here; each file's flaky cases are in its cases (`?cases=true`).
      flaky: files.filter((f) => f.state === 'flaky').map((f) => f.key),
      files: files.map(({ cases, ...f }) => ({
        ...f,
        case_counts: cases.reduce<Record<string, number>>((acc, c) => ({ ...acc, [c.status]: (acc[c.status] ?? 0) + 1 }), {}),
        ...(withCases && { cases }),
      })),
    };
  }

  async list(
    client: Client,
    label: Record<string, string>,
    limit: number,
  ): Promise<Array<Pick<RunView, 'id' | 'name' | 'submitted_by' | 'created_at' | 'labels' | 'pool' | 'source'> & { state: string }>> {
    const recent = await this.runs.recent(Math.max(limit * 5, 200));
    return recent
      .filter((r) => seesAllTasks(client) || r.submitted_by === client.name)
      .filter((r) => Object.entries(label).every(([k, v]) => r.labels[k] === v))
      .slice(0, limit)
      .map((r) => ({
        id: r.id,
        name: r.name,
        state: r.state ?? (r.cancelled_at ? 'cancelling' : 'in progress'),
        submitted_by: r.submitted_by,
        created_at: new Date(r.created_at).toISOString(),
        labels: r.labels,
        pool: r.pool,
        source: r.source ?? null,
      }));
  }

  async junit(id: string, client: Client): Promise<string> {
    const run = await this.owned(id, client);
    const { files } = await this.files(run, true);
    return buildJUnit({
      id: run.id,
      name: run.name,
      created_at: run.created_at,
      labels: run.labels,
      files,
      ...(run.source && { source: run.source }),
    });
  }
}
