import { createHash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
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

/** A run's state from its files, before it is finalized (a given-up run that has ended is an `error`). */
export function liveRunState(run: RunRecord, files: readonly FileResult[]): RunState {
  const state = runState(files, run.cancelled_at !== undefined);
  return run.abandoned !== undefined && state === 'cancelled' ? 'error' : state;
}

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
  /** The CI build whose nodes run it (`fleet run --build`), or null. */
  build: string | null;
  /** Why the run was given up (its CI nodes gone), or null. */
  abandoned: string | null;
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

/** A run's files with their results, its tasks as recorded and every attempt. */
export interface RunFiles {
  files: FileResult[];
  tasks: Map<string, RunTaskRecord>;
  attempts: RunAttempt[];
}

type FileView = RunView['files'][number];

/** A file as the run's view shows it: its cases counted by status, and listed only when asked. */
function fileView(f: FileResult, withCases: boolean): FileView {
  const caseCounts: Record<string, number> = {};
  for (const c of f.cases) caseCounts[c.status] = (caseCounts[c.status] ?? 0) + 1;
  const view: FileView = {
    key: f.key,
    task_id: f.task_id,
    pool: f.pool,
    state: f.state,
    attempts: f.attempts,
    duration_ms: f.duration_ms,
    reason: f.reason,
    message: f.message,
    output_tail: f.output_tail,
    worker_id: f.worker_id,
    quarantined: f.quarantined,
    case_counts: caseCounts,
  };
  if (withCases) view.cases = f.cases;
  return view;
}

/** What a client reads of runs: one run with its files (and their cases), the list, the JUnit report. */
@Injectable()
export class RunViews {
  /** Finished runs' results (with their cases or without), by run and quarantine; bounded by their files and cases in all. */
  private readonly finished = new LRUCache<string, RunFiles>({
    maxSize: 100_000,
    sizeCalculation: (r) =>
      Math.max(
        1,
        r.files.reduce((n, f) => n + 1 + f.cases.length, 0),
      ),
  });

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

  /**
   * Every file's result, from its attempts and, while it has no final one, from BullMQ and the run's record.
   * `live: false` skips asking BullMQ for each unfinished task's state (one script call per task): its files
   * read as queued, and a task gone from Redis is not seen (the reconciler asks now and then, not every pass).
   * A finished run's results (with their cases for the JUnit report and `?cases=true`, or without) no longer change
   * but for the quarantine: they are kept in memory, by run and quarantine, rather than read and rebuilt on every call.
   */
  async files(run: RunRecord, withCases: boolean, live = true): Promise<RunFiles> {
    if (run.finalized_at === undefined) return this.readFiles(run, withCases, live, this.runs.quarantined());
    const quarantine = await this.runs.quarantined();
    const key = createHash('sha256')
      .update([run.id, run.finalized_at, withCases ? 'cases' : 'files', ...[...quarantine.keys()].sort()].join('\0'))
      .digest('base64url');
    const kept = this.finished.get(key);
    if (kept) return kept;
    const read = await this.readFiles(run, withCases, live, Promise.resolve(quarantine));
    this.finished.set(key, read);
    return read;
  }

  /** `quarantine`: being read meanwhile (the reads go out together: one wait for Redis rather than one after another). */
  private async readFiles(run: RunRecord, withCases: boolean, live: boolean, quarantined: Promise<ReadonlyMap<string, unknown>>): Promise<RunFiles> {
    const [tasks, attempts, quarantine] = await Promise.all([this.runs.tasks(run.id), this.runs.attempts(run.id, withCases), quarantined]);
    const byKey = new Map<string, RunAttempt[]>();
    for (const a of attempts) {
      const list = byKey.get(a.key);
      if (list) list.push(a);
      else byKey.set(a.key, [a]);
    }
    const unfinished = [...tasks].filter(([key, t]) => t.state === 'queued' && !byKey.get(key)?.some((a) => a.final));
    const states = live ? await this.runs.liveStates(unfinished.map(([, t]) => t)) : unfinished.map(() => 'waiting');
    const liveOf = new Map(unfinished.map(([key], i) => [key, states[i]]));
    const files = [...tasks].map(([key, t]) => {
      const liveState: LiveState | undefined =
        t.state === 'blocked'
          ? 'blocked'
          : t.state === 'cancelled'
            ? 'cancelled'
            : liveOf.has(key)
              ? (LIVE[liveOf.get(key) as string] ?? 'cancelled')
              : undefined;
      const reason =
        t.state === 'cancelled'
          ? t.reason
          : liveOf.get(key) === 'unknown'
            ? 'its task is gone from Redis (removed, or Redis lost its data)'
            : undefined;
      return fileResult(key, { id: t.id, pool: t.pool }, byKey.get(key) ?? [], liveState, (test) => quarantine.has(test), reason);
    });
    return { files, tasks, attempts };
  }

  async view(id: string, client: Client, withCases: boolean): Promise<RunView> {
    const run = await this.owned(id, client);
    // The pool's slots (for the ETA) are read while the files are.
    const [{ files, tasks }, slots] = await Promise.all([this.files(run, withCases), this.runs.workerSlots(run.pool)]);
    const counts = countFiles(files);
    const state = (run.state as RunState | undefined) ?? liveRunState(run, files);
    const left = files
      .filter((f) => f.state === 'queued' || f.state === 'running' || f.state === 'blocked')
      .map((f) => ({ expectedMs: tasks.get(f.key)?.expected_ms ?? this.settings.runDefaultTestMs }));
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
      build: run.build ?? null,
      abandoned: run.abandoned ?? null,
      counts,
      progress: counts.total === 0 ? 1 : counts.done / counts.total,
      eta_s: state === 'queued' || state === 'running' ? etaSeconds(left, slots) : 0,
      // Files here; each file's flaky cases are in its cases (`?cases=true`).
      flaky: files.filter((f) => f.state === 'flaky').map((f) => f.key),
      files: files.map((f) => fileView(f, withCases)),
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
