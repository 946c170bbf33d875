import { createHash, randomBytes } from 'node:crypto';
import { existsSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { Inject, Injectable } from '@nestjs/common';
import { glob } from 'tinyglobby';
import { conflict, notFound, unprocessable } from '@fleet/app';
import { seesAllTasks } from '@fleet/auth';
import type { Client } from '@fleet/config';
import { type CoordinatorSettings, COORDINATOR_SETTINGS } from './coordinator-settings.js';
import {
  byCost,
  extensionOf,
  type FieldError,
  idempotentTaskId,
  parseTask,
  routeTask,
  type Task,
  unmetRequirements,
  type WorkerTemplate,
} from '@fleet/contracts';
import {
  buildJUnit,
  countFiles,
  etaSeconds,
  type FileResult,
  fileResult,
  type LiveState,
  longestFirst,
  type RunAttempt,
  type RunCounts,
  type RunRequest,
  type RunState,
  runState,
} from '@fleet/runs';
import { type FlakyRecord, type QuarantineRecord, type RunRecord, RunsRepository, type RunTaskRecord } from './runs.repository.js';
import { type NewTask, TaskQueueRepository } from './task-queue.repository.js';
import { type ResolvedSource, SourceResolver } from './source-resolver.js';

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

/** How long a racing request waits for the run another request with its idempotency key is creating. */
const CLAIM_TTL_S = 60;

/** The most time resolving one run's test entries in a workdir may take (the rest is refused, not queued). */
const RESOLVE_BUDGET_MS = 5000;

/** Whether `path`, links followed, is `dir` or inside it. */
function isWithin(dir: string, path: string): boolean {
  const rel = relative(realpathSync(dir), realpathSync(path));
  return !rel.startsWith('..') && !isAbsolute(rel);
}

/** A run id; derived from the client and its idempotency key when there is one (a retried submission finds its run). */
function runId(client: string, idempotencyKey: string | undefined): string {
  if (idempotencyKey === undefined) return `r-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  const h = createHash('sha256').update(`${client}\0run\0${idempotencyKey}`).digest();
  return `r-${h.readUIntBE(0, 6).toString(36).padStart(6, '0').slice(0, 12)}-${h.subarray(6, 10).toString('hex')}`;
}

/**
 * Runs: a suite submitted as one unit. Its files are found in the pool's workdir, ordered longest first by the
 * analyzer's history, and queued as tasks with the run's record in one transaction; tasks that wait for
 * others are queued when those have passed (see RunsReconciler); the run's state, verdict, JUnit report and
 * the flakiness of its tests come from the attempts workers record.
 */
@Injectable()
export class RunsService {
  constructor(
    @Inject(COORDINATOR_SETTINGS) private readonly settings: CoordinatorSettings,
    private readonly runs: RunsRepository,
    private readonly tasks: TaskQueueRepository,
    private readonly sources: SourceResolver,
  ) {}

  private template(pool: string): WorkerTemplate {
    const t = this.settings.templates.find((x) => x.pool === pool);
    if (!t) throw unprocessable([{ field: 'pool', reason: `no pool "${pool}"; pools: ${this.settings.templates.map((x) => x.pool).join(', ')}` }]);
    return t;
  }

  /** The pool a run's tests go to: the one named, or the cheapest that meets the requirements and runs tests. */
  private poolFor(spec: RunRequest): WorkerTemplate {
    if (spec.pool) return this.template(spec.pool);
    const req = spec.hardware_requirements ?? {};
    const fits = this.settings.templates.filter((t) => Object.keys(t.runners.test).length > 0 && unmetRequirements(req, t).length === 0).sort(byCost);
    if (!fits[0]) {
      const why = this.settings.templates.map((t) => `${t.pool}: ${unmetRequirements(req, t).join(', ') || 'no test runner'}`).join('; ');
      throw unprocessable([{ field: 'hardware_requirements', reason: `no pool can run these tests (${why})` }]);
    }
    return fits[0];
  }

  /** Every file the run's entries name, in the pool's workdir: files, folders (every runnable file below) and globs. */
  private async resolveTests(spec: RunRequest, t: WorkerTemplate): Promise<string[]> {
    const runnable = (f: string) => t.runners.test[extensionOf(f)] !== undefined;
    const errors: FieldError[] = [];
    const found = new Set<string>();
    const deadline = Date.now() + RESOLVE_BUDGET_MS;
    for (const [i, entry] of spec.tests.entries()) {
      if (Date.now() > deadline) {
        errors.push({
          field: `tests[${i}]`,
          reason: `resolving the tests took longer than ${RESOLVE_BUDGET_MS} ms; name fewer or narrower patterns`,
        });
        break;
      }
      const isGlob = /[*?[{]/.test(entry);
      const isDir = entry.endsWith('/') || (!isGlob && existsSync(join(t.workdir, entry)) && statSync(join(t.workdir, entry)).isDirectory());
      if (!isGlob && !isDir) {
        if (!runnable(entry)) errors.push({ field: `tests[${i}]`, reason: `pool ${t.pool} has no test runner for "${extensionOf(entry)}" files` });
        else if (existsSync(t.workdir) && !existsSync(join(t.workdir, entry)))
          errors.push({ field: `tests[${i}]`, reason: `no such file in ${t.workdir}` });
        else found.add(entry);
        continue;
      }
      if (isDir && existsSync(join(t.workdir, entry)) && !isWithin(t.workdir, join(t.workdir, entry))) {
        errors.push({ field: `tests[${i}]`, reason: `${entry} leads outside the workdir ${t.workdir} (a link)` });
        continue;
      }
      const pattern = isDir ? `${entry.replace(/\/$/, '')}/**/*` : entry;
      const matches = (
        await glob(pattern, { cwd: t.workdir, onlyFiles: true, dot: false, followSymbolicLinks: false, expandDirectories: false })
      ).filter(runnable);
      if (matches.length === 0) errors.push({ field: `tests[${i}]`, reason: `matches no file pool ${t.pool} can run in ${t.workdir}` });
      for (const m of matches.sort()) found.add(m);
    }
    if (found.size > 5000) errors.push({ field: 'tests', reason: `${found.size} files: at most 5000 per run` });
    if (errors.length > 0) throw unprocessable(errors);
    return [...found];
  }

  async create(spec: RunRequest, client: Client): Promise<{ run: RunView; duplicate: boolean }> {
    const id = runId(client.name, spec.idempotency_key);
    const existing = await this.runs.run(id);
    if (existing) return { run: await this.view(id, client, false), duplicate: true };
    if (spec.idempotency_key === undefined) return { run: await this.createRun(id, spec, client), duplicate: false };
    // Racing requests with one key: the first creates the run, the others answer with it once it is recorded.
    if (!(await this.runs.claim(id, CLAIM_TTL_S))) return { run: await this.awaitRun(id, client), duplicate: true };
    try {
      return { run: await this.createRun(id, spec, client), duplicate: false };
    } catch (err) {
      // Refused (a bad pattern, a full queue): the key is free again for a corrected request.
      await this.runs.unclaim(id);
      throw err;
    }
  }

  /** The run another request is creating under the same idempotency key, once it is recorded. */
  private async awaitRun(id: string, client: Client): Promise<RunView> {
    const deadline = Date.now() + CLAIM_TTL_S * 1000;
    while (Date.now() < deadline) {
      if (await this.runs.run(id)) return this.view(id, client, false);
      await new Promise((r) => setTimeout(r, 50));
    }
    throw conflict('idempotency_key', 'a request with this key is still creating its run; retry');
  }

  private async createRun(id: string, spec: RunRequest, client: Client): Promise<RunView> {
    const template = this.poolFor(spec);
    const source = spec.source && (await this.sources.resolve(spec.source, template, 'source'));
    const files = source ? await this.sources.resolveTests(spec.tests, source, template) : await this.resolveTests(spec, template);
    const history = await this.runs.expectedDurations(template.pool, files);
    const known = history.filter((d): d is number => d !== null).sort((a, b) => a - b);
    // A file without history is expected to take as long as the middle of the ones with history.
    const fallback = known.length > 0 ? known[Math.floor(known.length / 2)] : this.settings.runDefaultTestMs;
    const ordered = longestFirst(files.map((key, i) => ({ key, expectedMs: history[i] ?? fallback })));

    const labels = { ...spec.labels, run_id: id };
    const errors: FieldError[] = [];
    const records = new Map<string, RunTaskRecord>();
    const ready: NewTask[] = [];
    const add = (key: string, task: Task, pool: string, deps: string[], file: boolean, expectedMs: number) => {
      const taskId = idempotentTaskId(pool, `run:${id}`, key);
      const blocked = deps.length > 0;
      records.set(key, { id: taskId, pool, deps, state: blocked ? 'blocked' : 'queued', file, expected_ms: expectedMs, ...(blocked && { task }) });
      if (!blocked) ready.push({ id: taskId, pool, task, run: { id, key } });
    };
    for (const f of ordered) {
      const parsed = parseTask({
        type: 'test',
        name: f.key.length > 200 ? `…${f.key.slice(-199)}` : f.key,
        priority: spec.priority,
        config: { test_file: f.key, ...(source && { source: { repo: source.repo, commit: source.commit } }) },
        timeout_ms: spec.timeout_ms,
        max_attempts: spec.retries + 1,
        retry_backoff_ms: 200,
        labels,
      });
      if (!parsed.ok) errors.push({ field: 'tests', reason: `${f.key}: ${parsed.errors.map((e) => `${e.field} ${e.reason}`).join('; ')}` });
      else add(f.key, parsed.value, template.pool, spec.tests_depend_on, true, f.expectedMs);
    }
    for (const [i, t] of spec.tasks.entries()) {
      const { key, depends_on, ...body } = t;
      if (records.has(key)) {
        errors.push({ field: `tasks[${i}].key`, reason: `"${key}" is a test file of this run; give the task another key` });
        continue;
      }
      const parsed = parseTask({ ...body, labels: { ...(body.labels as Record<string, string> | undefined), ...labels } });
      if (!parsed.ok) {
        for (const e of parsed.errors) errors.push({ field: `tasks[${i}].${e.field}`, reason: e.reason });
        continue;
      }
      const route = routeTask(parsed.value, this.settings.templates);
      if (!route.ok) errors.push({ field: `tasks[${i}]`, reason: route.reason });
      else {
        const task = await this.sources.resolveTask(parsed.value, this.template(route.pool), `tasks[${i}].config.source`);
        add(key, task, route.pool, depends_on, false, this.settings.runDefaultTestMs);
      }
    }
    if (errors.length > 0) throw unprocessable(errors);

    const run: RunRecord = {
      id,
      name: spec.name,
      submitted_by: client.name,
      created_at: Date.now(),
      pool: template.pool,
      retries: spec.retries,
      labels: spec.labels,
      ...(source && { source }),
    };
    await this.tasks.enqueue(ready, [], client.name, this.runs.creation(run, records));
    return this.view(id, client, false);
  }

  private async owned(id: string, client: Client): Promise<RunRecord> {
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

  /** Cancels what has not started: queued tasks leave their queues, blocked ones never will; running ones finish. */
  async cancel(id: string, client: Client): Promise<RunView> {
    const run = await this.owned(id, client);
    if (run.cancelled_at) return this.view(id, client, false);
    if (run.finalized_at) throw conflict('id', `run has already finished (${run.state ?? 'done'})`);
    await this.runs.markCancelled(id, Date.now());
    const { tasks, attempts } = await this.files(run, false);
    const finished = new Set(attempts.filter((a) => a.final).map((a) => a.key));
    for (const [key, t] of tasks) {
      if (t.state === 'cancelled' || finished.has(key)) continue;
      if (t.state === 'blocked') {
        await this.runs.transition(id, key, 'blocked', { ...t, state: 'cancelled', reason: 'the run was cancelled' });
        continue;
      }
      const found = await this.tasks.getJob(t.pool, t.id);
      if (!found || found.state === 'active') continue;
      if (await this.tasks.cancel(found.job, cancelledRecord(found.job, t.pool, run.submitted_by))) {
        await this.runs.transition(id, key, 'queued', { ...t, state: 'cancelled', reason: 'the run was cancelled' });
      }
    }
    return this.view(id, client, false);
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

  async flaky(limit: number): Promise<Array<FlakyRecord & { test: string; rate: number; quarantined: boolean }>> {
    const [all, quarantine] = await Promise.all([this.runs.flakiness(), this.runs.quarantined()]);
    return [...all]
      .filter(([, r]) => r.flaky > 0)
      .map(([test, r]) => ({ test, ...r, rate: r.flaky / r.runs, quarantined: quarantine.has(test) }))
      .sort((a, b) => b.rate - a.rate || b.flaky - a.flaky || a.test.localeCompare(b.test))
      .slice(0, limit);
  }

  async quarantineList(): Promise<Array<QuarantineRecord & { test: string }>> {
    return [...(await this.runs.quarantined())].map(([test, r]) => ({ test, ...r }));
  }

  async quarantine(test: string, reason: string, client: Client): Promise<QuarantineRecord & { test: string }> {
    const record = { by: client.name, at: Date.now(), reason };
    await this.runs.quarantine(test, record);
    return { test, ...record };
  }

  async release(test: string): Promise<void> {
    if (!(await this.runs.release(test))) throw notFound('test', `"${test}" is not quarantined`);
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
