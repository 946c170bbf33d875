import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { conflict, notFound, unprocessable } from '@fleet/app';
import type { Client } from '@fleet/config';
import {
  ciQueueName,
  countCases,
  describeFieldErrors,
  type ExitMeaning,
  type WarmMode,
  parseQueuedTask,
  type QueuedTask,
  type TaskFailure,
  type TaskResult,
} from '@fleet/contracts';
import { addOutcome, createRedis, defineRecordAttempt, FleetKeys, taskFailure, waitUntilReady } from '@fleet/redis';
import {
  type AttemptFacts,
  attemptOutcome,
  type AttemptReport,
  BUILD_ID,
  BUILD_ID_RULE,
  type JoinBuild,
  type Lease,
  type LeaseAnswer,
  type LeaseRequest,
  type RenewRequest,
  type ReportAnswer,
  type RunRequest,
} from '@fleet/runs';
import { CiLeases } from './ci-leases.js';
import { RunSignals } from './run-signals.js';
import { type CoordinatorSettings, COORDINATOR_SETTINGS } from './coordinator-settings.js';
import { RunPlanner, runId } from './run-planner.js';
import { type RunView, RunViews } from './run-views.js';
import { type RunRecord, RunsRepository } from './runs.repository.js';

/** How often a waiting lease request looks for a file or the run's end. */
const LEASE_POLL_MS = 50;

/** What a node learns when it joins: the run, how long a lease lasts, and the runner for each extension. */
export interface Joined {
  run: RunView;
  lease_ms: number;
  runners: Record<string, string[]>;
  /** What the runners' exit codes mean, by extension (`runners.exit_codes`), as the pool's workers read them. */
  exit_codes: Record<string, Record<string, ExitMeaning>>;
  /** Whether a runner runs warm, by extension, where the pool says (`runners.warm`); pytest runners do by default. */
  warm: Record<string, WarmMode>;
  /** The files this call's node listed that the run does not have, and the run's files it did not list. */
  differs: { only_here: number; only_in_run: number };
}

/**
 * CI nodes as workers (`fleet run … --build <id>`): every node of a build joins the same run (the first call
 * makes it, keyed by the client and the build id), then leases the run's files from the run's own queue,
 * runs them in its checkout and reports each outcome. The coordinator writes the outcome (timing event and
 * run record) and records it in BullMQ, so a node needs HTTP and a token, never a Redis address.
 */
@Injectable()
export class BuildsService implements OnApplicationShutdown {
  private readonly logger = new Logger(BuildsService.name);
  private readonly redis: Redis;
  private readonly keys: FleetKeys;

  constructor(
    @Inject(COORDINATOR_SETTINGS) private readonly settings: CoordinatorSettings,
    private readonly planner: RunPlanner,
    private readonly runs: RunsRepository,
    private readonly views: RunViews,
    private readonly leases: CiLeases,
    private readonly signals: RunSignals,
  ) {
    this.keys = new FleetKeys(settings.prefix, settings.spread);
    this.redis = createRedis(settings.redisUrl, 'producer', 'coordinator-builds');
    defineRecordAttempt(this.redis);
  }

  async open(timeoutMs = 10_000): Promise<void> {
    await waitUntilReady(this.redis, this.settings.redisUrl, timeoutMs);
  }

  /** Its connection ends with the app (nothing called a close before: an in-process coordinator kept its test's process alive). */
  async onApplicationShutdown(): Promise<void> {
    await this.redis.quit().catch(() => undefined);
    this.redis.disconnect();
  }

  private runOf(build: string, client: Client): string {
    if (!BUILD_ID.test(build)) throw unprocessable([{ field: 'build', reason: BUILD_ID_RULE }]);
    return runId(client.name, `build:${build}`);
  }

  /** The build's run, which this client made; 404 before any node has joined. */
  private async buildRun(build: string, client: Client): Promise<RunRecord> {
    const run = await this.runs.run(this.runOf(build, client));
    if (!run || run.build !== build) throw notFound('build', `no build "${build}": a node joins it first (fleet run --build)`);
    return run;
  }

  /** The id of the build's run (404 before any node has joined). */
  async runIdOf(build: string, client: Client): Promise<string> {
    return (await this.buildRun(build, client)).id;
  }

  /** Joins (and, for the first node, creates) the build's run. */
  async join(build: string, req: JoinBuild, client: Client): Promise<Joined> {
    const id = this.runOf(build, client);
    let files = req.tests;
    if (req.only_failed_of !== undefined && !(await this.runs.run(id))) files = await this.failedOf(req.only_failed_of, files, client);
    const spec: RunRequest = {
      name: req.name ?? `build ${build}`,
      tests: [],
      ...(req.pool && { pool: req.pool }),
      retries: req.retries,
      timeout_ms: req.timeout_ms,
      priority: 0,
      labels: { ...req.labels, build },
      tests_depend_on: [],
      tasks: [],
      idempotency_key: `build:${build}`,
    };
    await this.planner.create(spec, client, { build, files });
    await this.runs.nodeSeen(id, req.node, Date.now());
    const run = await this.views.view(id, client, false);
    const record = await this.runs.run(id);
    const template = this.settings.templates.find((t) => t.pool === record?.pool);
    const inRun = new Set(run.files.map((f) => f.key));
    const here = new Set(req.tests);
    return {
      run,
      lease_ms: this.leases.leaseMs,
      runners: Object.fromEntries(Object.entries(template?.runners.test ?? {}).map(([ext, argv]) => [ext, [...argv]])),
      exit_codes: { ...template?.runners.exit_codes },
      warm: { ...template?.runners.warm },
      differs: {
        only_here: req.only_failed_of ? 0 : [...here].filter((f) => !inRun.has(f)).length,
        only_in_run: [...inRun].filter((f) => !here.has(f)).length,
      },
    };
  }

  /** The files of an earlier build that failed or could not run, among the ones this node found. */
  private async failedOf(earlier: string, found: readonly string[], client: Client): Promise<string[]> {
    const run = await this.runs.run(this.runOf(earlier, client));
    if (!run || run.build !== earlier) throw unprocessable([{ field: 'only_failed_of', reason: `no build "${earlier}" of this client` }]);
    if (run.finalized_at === undefined) throw conflict('only_failed_of', `build "${earlier}" has not ended yet`);
    const { files } = await this.views.files(run, false);
    const failed = new Set(files.filter((f) => f.state === 'failed' || f.state === 'error' || f.state === 'cancelled').map((f) => f.key));
    const rerun = found.filter((f) => failed.has(f));
    if (rerun.length === 0)
      throw unprocessable([{ field: 'only_failed_of', reason: `build "${earlier}" has no failed file among the ${found.length} found here` }]);
    return rerun;
  }

  /**
   * Up to `want` files for the node, each held under a token of its own for a lease. With none to hand out,
   * waits up to `wait_ms` (checking every LEASE_POLL_MS) for one, or for the run's end.
   */
  async lease(build: string, req: LeaseRequest, client: Client): Promise<LeaseAnswer> {
    const deadline = Date.now() + req.wait_ms;
    let run = await this.buildRun(build, client);
    await this.runs.nodeSeen(run.id, req.node, Date.now());
    for (;;) {
      if (run.finalized_at !== undefined) return { leases: [], lease_ms: this.leases.leaseMs, ended: run.state ?? 'error' };
      const leases = run.cancelled_at !== undefined || run.abandoned !== undefined ? [] : await this.take(run, req.want);
      if (leases.length > 0 || req.want === 0 || Date.now() >= deadline) return { leases, lease_ms: this.leases.leaseMs };
      await sleep(LEASE_POLL_MS);
      run = (await this.runs.run(run.id)) ?? run;
    }
  }

  /** Takes up to `want` of the run's files from its queue, each under a fresh token. */
  private async take(run: RunRecord, want: number): Promise<Lease[]> {
    const consumer = this.leases.consumer(ciQueueName(run.id));
    const leases: Lease[] = [];
    while (leases.length < want) {
      const token = randomUUID();
      const job = await consumer.getNextJob(token, { block: false });
      if (!job) break;
      const task = parseQueuedTask(job.data);
      if (!task.ok || task.value.type !== 'test') {
        // Written by something else than this coordinator: failed for good, never handed to a node.
        const why = task.ok ? `a ${task.value.type} task in a build's queue` : describeFieldErrors(task.errors);
        await job.moveToFailed(taskFailure({ reason: 'invalid_task', message: `invalid task payload: ${why}` }), token, false);
        continue;
      }
      leases.push({
        task_id: job.id as string,
        token,
        file: task.value.config.test_file,
        attempt: job.attemptsMade + 1,
        timeout_ms: task.value.timeout_ms,
      });
    }
    return leases;
  }

  /** The node's file, if the token still holds it; 409 when the lease was lost (nothing is then recorded). */
  private async held(run: RunRecord, taskId: string, node: string, token: string): Promise<Job<QueuedTask, TaskResult>> {
    await this.runs.nodeSeen(run.id, node, Date.now());
    const job = await this.leases.job(ciQueueName(run.id), taskId);
    const lost = () => conflict('token', `${taskId} is no longer held by this lease (it ran out and the file went back to the queue)`);
    if (!job) throw lost();
    if ((await job.extendLock(token, this.leases.leaseMs)) !== 1) throw lost();
    return job;
  }

  /** Renews a lease: the node still runs the file. */
  async renew(build: string, taskId: string, req: RenewRequest, client: Client): Promise<{ lease_ms: number }> {
    await this.held(await this.buildRun(build, client), taskId, req.node, req.token);
    return { lease_ms: this.leases.leaseMs };
  }

  /**
   * Records what the node saw: the timing event and the run's record of the attempt first, then the outcome in
   * BullMQ (a failure with attempts left goes back to the queue for any node). A lease no longer held records
   * nothing (another node has the file).
   */
  async report(build: string, taskId: string, req: AttemptReport, client: Client): Promise<ReportAnswer> {
    const run = await this.buildRun(build, client);
    const job = await this.held(run, taskId, req.node, req.token);
    const parsed = parseQueuedTask(job.data);
    if (!parsed.ok) throw conflict('task_id', `the queued task is not valid: ${describeFieldErrors(parsed.errors)}`);
    const task = parsed.value;
    const now = Date.now();
    const facts: AttemptFacts = {
      taskId,
      attemptsMade: job.attemptsMade,
      attemptsStarted: job.attemptsStarted,
      maxAttempts: job.opts.attempts ?? 1,
      queuedAt: job.timestamp,
      startedAt: job.processedOn ?? now - req.duration_ms,
      finishedAt: now,
      // History is per pool and file: a build's files share their series with the same files elsewhere.
      pool: run.pool,
      workerId: req.node,
    };
    const cases = req.cases;
    if (req.status === 'passed') {
      const result: TaskResult = {
        outcome: 'passed',
        worker_id: req.node,
        duration_ms: req.duration_ms,
        ...(req.exit_code !== null && { exit_code: req.exit_code }),
        output_tail: req.output_tail,
        metrics: { execution_time_seconds: req.duration_ms / 1000 },
        ...(cases && { case_counts: countCases(cases) }),
      };
      await this.write(attemptOutcome(facts, task, { result, ...(cases && { cases }) }));
      await job.moveToCompleted(result, req.token, false);
      return this.settled(run, true, 'passed', req.want);
    }
    const failure: TaskFailure = {
      reason: req.reason ?? 'test_failed',
      message: req.message || `${req.reason ?? 'failed'} on ${req.node}`,
      exit_code: req.exit_code,
      output_tail: req.output_tail,
      duration_ms: req.duration_ms,
      ...(cases && { cases }),
    };
    const outcome = attemptOutcome(facts, task, { failure });
    await this.write(outcome);
    await job.moveToFailed(taskFailure(failure), req.token, false);
    return this.settled(run, outcome.final, outcome.run?.attempt.status ?? 'failed', req.want);
  }

  /** After an attempt is recorded: the run is finalized now if that was its last file; the node's next files. */
  private async settled(run: RunRecord, final: boolean, state: string, want: number): Promise<ReportAnswer> {
    if (final && (await this.leases.unfinished(ciQueueName(run.id))) === 0) this.signals.maybeDone(run.id);
    return { final, state, leases: want > 0 ? await this.take(run, want) : [] };
  }

  private async write(outcome: Parameters<typeof addOutcome>[3]): Promise<void> {
    const pipeline = this.redis.multi();
    addOutcome(pipeline, this.keys, this.settings.timingsMaxLen, outcome);
    const replies = (await pipeline.exec()) ?? [];
    const failed = replies.find(([err]) => err);
    if (failed) throw failed[0] as Error;
  }

  /**
   * The reconciler's pass over a build's active run: keeps its queue's consumer (and stalled check) open, and
   * gives the run up when none of its nodes has been seen for CI_NODES_GONE_MS. True when it was given up now.
   */
  async watch(run: RunRecord): Promise<boolean> {
    this.leases.consumer(ciQueueName(run.id));
    if (run.abandoned !== undefined) return false;
    const seen = await this.runs.nodesLastSeen(run.id);
    const since = Date.now() - Math.max(seen.at, run.created_at);
    if (since < this.settings.ciNodesGoneMs) return false;
    const why = `no node of build ${run.build ?? ''} has asked for work or renewed a file for ${Math.round(since / 1000)} s (CI_NODES_GONE_MS ${this.settings.ciNodesGoneMs}): the build's nodes are gone`;
    this.logger.warn(`run ${run.id}: ${why}`);
    await this.runs.abandon(run.id, why);
    return true;
  }

  /** After a build's run ended: its queue goes once no node can still be reporting to it. */
  async dropFinishedQueues(): Promise<void> {
    for (const queue of await this.runs.queuesToDrop(Date.now() - 2 * this.leases.leaseMs)) {
      try {
        await this.leases.obliterate(queue);
      } catch (err) {
        this.logger.warn(`removing ${queue}: ${(err as Error).message}`);
      }
    }
  }
}
