import { createHash, randomBytes } from 'node:crypto';
import { existsSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { Inject, Injectable } from '@nestjs/common';
import { glob } from 'tinyglobby';
import { conflict, unprocessable } from '@fleet/app';
import type { Client } from '@fleet/config';
import {
  byCost,
  extensionOf,
  type FieldError,
  ciQueueName,
  idempotentTaskId,
  parseTask,
  routeTask,
  type Task,
  unmetRequirements,
  type WorkerTemplate,
} from '@fleet/contracts';
import { expectedDurations, longestFirst, type RunRequest } from '@fleet/runs';
import { type CoordinatorSettings, COORDINATOR_SETTINGS } from './coordinator-settings.js';
import { type RunRecord, RunsRepository, type RunTaskRecord } from './runs.repository.js';
import { SourceResolver } from './source-resolver.js';
import { type NewTask, TaskQueueRepository } from './task-queue.repository.js';

/** A CI build's run: its build id and the files its first node found. */
export interface CiPlan {
  build: string;
  files: readonly string[];
}

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
export function runId(client: string, idempotencyKey: string | undefined): string {
  if (idempotencyKey === undefined) return `r-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  const h = createHash('sha256').update(`${client}\0run\0${idempotencyKey}`).digest();
  return `r-${h.readUIntBE(0, 6).toString(36).padStart(6, '0').slice(0, 12)}-${h.subarray(6, 10).toString('hex')}`;
}

/**
 * Turns a run request into a run: picks its pool, resolves its entries to files (in the pool's workdir, or in
 * the tree of the commit it names), orders them longest first by the analyzer's history, and queues the ready
 * tasks with the run's record in one transaction. Racing requests with one idempotency key make one run.
 */
/** Above this many files a run is ordered without reading file sizes (a stat each, on the event loop). */
const MAX_SIZED_FILES = 20_000;

@Injectable()
export class RunPlanner {
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

  /**
   * Creates the run, or finds the one its idempotency key made; returns its id. `ci`: a CI build's run, whose
   * files are the ones its first node found in its checkout, queued in a queue of the run's own.
   */
  async create(spec: RunRequest, client: Client, ci?: CiPlan): Promise<{ id: string; duplicate: boolean }> {
    const id = runId(client.name, spec.idempotency_key);
    const existing = await this.runs.run(id);
    if (existing) return { id, duplicate: true };
    if (spec.idempotency_key === undefined) return { id: await this.createRun(id, spec, client, ci), duplicate: false };
    // Racing requests with one key: the first creates the run, the others answer with it once it is recorded.
    if (!(await this.runs.claim(id, CLAIM_TTL_S))) return { id: await this.awaitRun(id), duplicate: true };
    try {
      return { id: await this.createRun(id, spec, client, ci), duplicate: false };
    } catch (err) {
      // Refused (a bad pattern, a full queue): the key is free again for a corrected request.
      await this.runs.unclaim(id);
      throw err;
    }
  }

  /** The run another request is creating under the same idempotency key, once it is recorded. */
  private async awaitRun(id: string): Promise<string> {
    const deadline = Date.now() + CLAIM_TTL_S * 1000;
    while (Date.now() < deadline) {
      if (await this.runs.run(id)) return id;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw conflict('idempotency_key', 'a request with this key is still creating its run; retry');
  }

  /** A CI node's files: each must have a runner in the pool's template (the node runs it with that runner). */
  private ciFiles(files: readonly string[], t: WorkerTemplate): string[] {
    const errors = files.flatMap((f, i) =>
      t.runners.test[extensionOf(f)] === undefined
        ? [{ field: `tests[${i}]`, reason: `pool ${t.pool} has no test runner for "${extensionOf(f)}" files` }]
        : [],
    );
    if (errors.length > 0) throw unprocessable(errors.slice(0, 20));
    return [...new Set(files)];
  }

  private async createRun(id: string, spec: RunRequest, client: Client, ci?: CiPlan): Promise<string> {
    const template = this.poolFor(spec);
    const source = spec.source && (await this.sources.resolve(spec.source, template, 'source'));
    const files = ci
      ? this.ciFiles(ci.files, template)
      : source
        ? await this.sources.resolveTests(spec.tests, source, template)
        : await this.resolveTests(spec, template);
    const testQueue = ci ? ciQueueName(id) : template.pool;
    const history = await this.runs.expectedDurations(template.pool, files);
    // Files without history are judged by their folder's history, else by their size (when they are in the
    // workdir, where the coordinator can see them; a stat each, only when some file has no history), else the
    // median (shard-order.ts).
    const sized = !source && !ci && files.length <= MAX_SIZED_FILES && history.some((h) => h === null);
    const sizeOf = (key: string) => {
      try {
        return statSync(join(template.workdir, key)).size;
      } catch {
        return undefined;
      }
    };
    const expected = expectedDurations(
      files.map((key, i) => ({ key, historyMs: history[i] ?? null, ...(sized && { bytes: sizeOf(key) }) })),
      this.settings.runDefaultTestMs,
    );
    const ordered = longestFirst(files.map((key, i) => ({ key, expectedMs: expected[i] ?? this.settings.runDefaultTestMs })));

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
      else add(f.key, parsed.value, testQueue, spec.tests_depend_on, true, f.expectedMs);
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
      ...(ci && { build: ci.build }),
      task_count: records.size,
      waits: [...records.values()].some((t) => t.deps.length > 0),
    };
    await this.tasks.enqueue(ready, [], client.name, this.runs.creation(run, records));
    return id;
  }
}
