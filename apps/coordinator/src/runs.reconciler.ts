import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { type CoordinatorSettings, COORDINATOR_SETTINGS } from './coordinator-settings.js';
import { DONE_STATES, releaseBlocked, testId } from '@fleet/runs';
import { BuildsService } from './builds.service.js';
import { RunSignals } from './run-signals.js';
import { ciQueueName } from '@fleet/contracts';
import { type RunRecord, RunsRepository } from './runs.repository.js';
import { liveRunState, RunViews } from './run-views.js';
import { RunsService } from './runs.service.js';
import { TaskQueueRepository } from './task-queue.repository.js';
import { TickRunner } from '@fleet/app';

/** Longer than a live coordinator's own queueing of a batch's parts can take (two commands, 5 s timeout each). */
const PENDING_SETTLE_MS = 15_000;

/** How often, at most, the reconciler asks BullMQ for the state of a run's unfinished tasks. */
const LIVE_CHECK_MS = 10_000;

/**
 * Looks after runs in progress, every RUNS_TICK_MS (never two passes at once): a task whose dependencies have
 * all passed is queued; one whose dependency failed, errored or was cancelled is cancelled with that reason
 * (and its own dependents after it); a run whose every task is done is finalized once, and the flakiness of
 * its tests counted. Several coordinators may do this at once: each step is a compare-and-set, and a released
 * task's id is derived from the run and its key, so it is queued once. Each pass first queues what batches
 * over spread pools still owe after a failure (recorded more than PENDING_SETTLE_MS ago).
 */
@Injectable()
export class RunsReconciler implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(RunsReconciler.name);
  private timer: NodeJS.Timeout | undefined;
  private readonly passes = new TickRunner(
    () => this.pass(),
    (err) => this.logger.warn(`looking after runs failed: ${err.message}`),
    { rerun: false },
  );
  /** When each active run's tasks' states were last asked (LIVE_CHECK_MS). */
  private readonly liveCheckedAt = new Map<string, number>();

  constructor(
    @Inject(COORDINATOR_SETTINGS) private readonly settings: CoordinatorSettings,
    private readonly runs: RunsRepository,
    private readonly views: RunViews,
    private readonly tasks: TaskQueueRepository,
    private readonly commands: RunsService,
    private readonly builds: BuildsService,
    signals: RunSignals,
  ) {
    signals.onMaybeDone((id, finals) => void this.reconcileNow(id, finals));
  }

  /**
   * Runs being reconciled out of turn (a run's last file may have ended), each at most once at a time: `again`
   * when news came during that pass, which may have read the run before it (then it goes once more), with the
   * highest count of last attempts the news gave (undefined: not known).
   */
  private readonly early = new Map<string, { again: boolean; finals: number | undefined }>();

  /** Reconciles one run now (finalizing it if its last file has ended); the tick's pass does the same later. */
  private async reconcileNow(id: string, finals?: number): Promise<void> {
    const pending = this.early.get(id);
    if (pending) {
      pending.again = true;
      pending.finals = pending.finals === undefined || finals === undefined ? undefined : Math.max(pending.finals, finals);
      return;
    }
    const state = { again: false, finals };
    this.early.set(id, state);
    try {
      do {
        state.again = false;
        // Read once: the record that says whether to go on is the one the reconcile works from.
        const finals = state.finals;
        const known = finals === undefined ? undefined : ((await this.runs.run(id)) ?? null);
        if (finals !== undefined && known && !mayHaveWork(known, finals)) continue;
        await this.reconcile(id, known);
      } while (state.again);
    } catch (err) {
      this.logger.warn(`run ${id}: ${(err as Error).message}; tried again next pass`);
    } finally {
      this.early.delete(id);
    }
  }

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.tick(), this.settings.runsTickMs);
  }

  tick(): Promise<void> {
    return this.passes.run();
  }

  private async pass(): Promise<void> {
    // Batches over spread pools that a failure left part-queued (see SpreadBatches).
    await this.tasks.settlePending(PENDING_SETTLE_MS);
    // What requests leave behind, bounded by count as well as by age.
    await this.tasks.trimRecords();
    await this.runs.trimFinished();
    await this.builds.dropFinishedQueues();
    // Each run on its own: one that cannot go on (its client's queue is full, a record is bad) is retried next
    // pass and holds up no other run.
    for (const id of await this.runs.activeRuns()) {
      try {
        await this.reconcile(id);
      } catch (err) {
        this.logger.warn(`run ${id}: ${(err as Error).message}; tried again next pass`);
      }
    }
  }

  /** `known`: the run's record as just read (null: there is none), else it is read here. */
  private async reconcile(id: string, known?: RunRecord | null): Promise<void> {
    const run = known === undefined ? await this.runs.run(id) : (known ?? undefined);
    if (!run) {
      this.liveCheckedAt.delete(id);
      return this.runs.forget(id);
    }
    // A run may not wait for ever (a pool without workers, a task that never becomes ready): past
    // RUN_MAX_AGE_S what has not started is cancelled, and the run ends when what is running has finished.
    if (run.cancelled_at === undefined && Date.now() - run.created_at > this.settings.runMaxAgeS * 1000) {
      this.logger.warn(`run ${id} (${run.name}) is older than RUN_MAX_AGE_S (${this.settings.runMaxAgeS} s): what has not started is cancelled`);
      await this.commands.cancelRun(run, `the run was not done within RUN_MAX_AGE_S (${this.settings.runMaxAgeS} s)`);
      return;
    }
    // A build's run: its queue's stalled check stays on while it is active; when its nodes are all gone, what
    // has not run is cancelled (each pass: a file whose lease ran out comes back to the queue first).
    if (run.build !== undefined && run.finalized_at === undefined) {
      if (await this.builds.watch(run)) {
        // Finalized on a later pass, from the record as it is now (given up, cancelled).
        await this.commands.cancelRun(run, (await this.runs.run(id))?.abandoned ?? 'the build was given up');
        this.liveCheckedAt.delete(id);
        return;
      }
      // Files whose leases ran out since come back to the queue: they are cancelled too.
      if (run.abandoned !== undefined) await this.commands.cancelRun(run, run.abandoned);
    }
    // BullMQ's state of every unfinished task (to see one gone from Redis) costs a script call per task: asked
    // when the run was last asked LIVE_CHECK_MS ago or more, not every pass (a 5,000-file run waiting for
    // workers cost 10,000 calls a second).
    const now = Date.now();
    const live = now - (this.liveCheckedAt.get(id) ?? 0) >= LIVE_CHECK_MS;
    if (live) this.liveCheckedAt.set(id, now);
    const { files, tasks } = await this.views.files(run, false, live);
    const testFiles = [...tasks].filter(([, t]) => t.file).map(([k]) => k);
    const blocked = [...tasks].filter(([, t]) => t.state === 'blocked').map(([key, t]) => ({ key, deps: t.deps }));
    for (const r of releaseBlocked(files, blocked, testFiles, run.cancelled_at !== undefined)) {
      const t = tasks.get(r.key);
      if (!t) continue;
      if (r.action === 'cancel') {
        if (await this.runs.transition(id, r.key, 'blocked', { ...t, state: 'cancelled', reason: r.reason }))
          this.logger.log(`run ${id}: ${r.key} cancelled: ${r.reason}`);
        continue;
      }
      const { task, ...rest } = t;
      if (!task) continue;
      // Queued first (idempotent: the id is derived from the run and the key), then marked.
      await this.tasks.enqueue([{ id: t.id, pool: t.pool, task, run: { id, key: r.key } }], [], run.submitted_by);
      await this.runs.transition(id, r.key, 'blocked', { ...rest, state: 'queued' });
    }
    if (!files.every((f) => DONE_STATES.has(f.state))) return;
    const full = (await this.views.files(run, true)).files;
    const state = liveRunState(run, full);
    this.liveCheckedAt.delete(id);
    if (!(await this.runs.finalize(id, state, Date.now()))) return;
    this.logger.log(`run ${id} (${run.name}) ${state}`);
    if (run.build !== undefined) await this.runs.dropQueueLater(ciQueueName(id), Date.now());
    // Flakiness across runs: each test of a run that ran its course is seen once; flaky if it failed then passed.
    const tests = full
      .filter((f) => f.state !== 'cancelled')
      .flatMap((f) =>
        f.cases.length > 1 ? f.cases.map((c) => ({ id: testId(f.key, c.name), flaky: c.flaky })) : [{ id: f.key, flaky: f.state === 'flaky' }],
      );
    // Some tools skip flakiness when most of a run failed (an outage, not flaky tests); so does this.
    const failedShare = full.filter((f) => f.state === 'failed' || f.state === 'error').length / Math.max(1, full.length);
    if (failedShare <= 0.8) await this.runs.countFlakiness(tests, id, Date.now());
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.passes.stop();
  }
}

/**
 * Whether news of a run's task's last attempt (`finals` of them recorded) can change anything: not while a run
 * without dependents (and not a build's, not cancelled) has fewer last attempts recorded than tasks. Reading the
 * whole run for every file's end made a run's bookkeeping grow with the square of its files. A count that falls
 * short of the truth only delays the run's end to the next tick. Workers make the same test when they record the
 * attempt (attempt-record.ts) and tell no news that fails it; this one answers news from workers that do not.
 */
function mayHaveWork(run: RunRecord, finals: number): boolean {
  if (run.task_count === undefined || run.waits !== false || run.build !== undefined || run.cancelled_at !== undefined) return true;
  return finals >= run.task_count;
}
