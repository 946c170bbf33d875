import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { type AnalyzerSettings, ANALYZER_SETTINGS } from './analyzer-settings.js';
import { decodeTimingEvent, type TimingEvent } from '@fleet/contracts';
import { AppMetrics } from '@fleet/ops';
import type { Counter, Histogram } from 'prom-client';
import { AnalyzerRepository, CommitBatch, type Gap, type StreamEntry } from './analyzer.repository.js';
import { eventSamples } from './event-samples.js';

const BATCH = 1000;
const BLOCK_MS = 1000;

/**
 * A batch ready to commit, and what each of its entries was: the metrics an applied event moves and its run time,
 * 'malformed', or null (deleted after delivery). Not the decoded events: they die young rather than living until
 * the commit lands.
 */
interface Prepared {
  /** The entries as read: a batch is prepared from them again when a commit did not apply (see commit). */
  entries: StreamEntry[];
  batch: CommitBatch;
  kinds: Array<AttemptMetrics | 'malformed' | null>;
  runMs: number[];
}

type Read = { entries: StreamEntry[] } | { err: Error };

const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));

interface AttemptMetrics {
  attempts: Counter.Internal;
  durations: Histogram.Internal<'pool' | 'type' | 'outcome'>;
}

/** How the timing events written to the stream are accounted for. */
export interface EventsAccount {
  /** Events counted (each task attempt once). */
  processed: number;
  malformed: number;
  /** Repeated writes of an event already counted. */
  duplicates: number;
  /** Entries ever written to the stream (since its key was created). */
  written: number;
  stream_length: number;
  /** Delivered to an analyzer, not yet committed. */
  pending: number;
  /** Written, not yet delivered. */
  unread: number;
  /** Trimmed from the stream (its MAXLEN cap) before any analyzer read them. */
  lost_before_read: number;
  /** Losses of Redis's data the analyzer noticed, newest first. */
  gaps: Gap[];
  /**
   * Series kept, the cap (`max_series`), and samples refused because they would have started a series past it:
   * all of them, and of those the ones the analysis derived (the pools' rates) rather than read from events.
   */
  series: { kept: number; max: number; refused_samples: number; refused_derived_samples: number };
}

export interface IngestHealth {
  /** When a read or commit last succeeded (0: never). */
  lastSuccessAt: number;
  /** The last error, while errors keep happening. */
  lastError: string | null;
}

/**
 * Reads the timings stream through the consumer group: first what this consumer left unacknowledged, then
 * new entries (blocking reads), and now and then what dead consumers left pending (XAUTOCLAIM). Every step
 * is inside the retrying loop, so no error stops ingest for good. When the group is gone (Redis lost its
 * data: a memory-only restart, a failover to an empty replica, the keys deleted), it is created again, the
 * loss is recorded as a gap, and what comes after is counted. Malformed entries are counted and
 * acknowledged, never fatal; entries trimmed before they were read are acknowledged and accounted as lost.
 */
@Injectable()
export class IngestService {
  private readonly logger = new Logger(IngestService.name);
  private running = false;
  private loop: Promise<void> | undefined;
  private malformedLogged = 0;
  private counted = 0;
  private lostBeforeRead = 0;
  private seriesCapLogged = false;
  private readonly dataLostListeners: Array<() => Promise<void>> = [];
  readonly health: IngestHealth = { lastSuccessAt: 0, lastError: null };
  /** The commit in flight (see startCommit): resolves to its error, or undefined once it landed. */
  private inFlight: Promise<Error | undefined> | undefined;
  private readonly byLabels = new Map<string, Map<string, Map<string, AttemptMetrics>>>();
  private readonly poolCounters = new Map<string, { completed: string; failed: string; runMs: string }>();

  private readonly eventsTotal: Counter<'result'>;
  private readonly attemptsTotal: Counter<'pool' | 'type' | 'outcome'>;
  private readonly durations: Histogram<'pool' | 'type' | 'outcome'>;

  constructor(
    @Inject(ANALYZER_SETTINGS) private readonly settings: AnalyzerSettings,
    private readonly repo: AnalyzerRepository,
    @Inject(AppMetrics) metrics: AppMetrics,
  ) {
    // Fed by what this analyzer's commits applied: summed over the analyzers sharing the group, each event once.
    this.eventsTotal = metrics.counter(
      'fleet_timing_events_total',
      'Timing events this analyzer committed: processed, duplicate (a repeated write), malformed',
      ['result'],
    );
    this.attemptsTotal = metrics.counter(
      'fleet_task_attempts_total',
      'Finished task attempts, by pool, task type and outcome (completed, failed, timeout)',
      ['pool', 'type', 'outcome'],
    );
    this.durations = metrics.histogram('fleet_task_duration_seconds', 'Run time of finished task attempts, by pool, task type and outcome', [
      'pool',
      'type',
      'outcome',
    ]);
  }

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  /** `listener` runs when Redis is found to have lost the analyzer's data (the analysis starts afresh). */
  onDataLost(listener: () => Promise<void>): void {
    this.dataLostListeners.push(listener);
  }

  private async run(): Promise<void> {
    let lastClaim = 0;
    let ownPendingDone = false;
    let failures = 0;
    let ahead: Promise<Read> | undefined;
    while (this.running) {
      try {
        if (!ownPendingDone) {
          const pending = await this.repo.ownPending(BATCH);
          if (pending.length === 0) ownPendingDone = true;
          else await this.process(pending);
        } else {
          if (Date.now() - lastClaim >= this.settings.config.claimIdleMs / 2) {
            lastClaim = Date.now();
            const claimed = await this.repo.claimAbandoned(BATCH);
            if (claimed.length > 0) {
              this.logger.log(`took over ${claimed.length} event(s) a stopped analyzer left unacknowledged`);
              await this.process(claimed);
            }
          }
          const read = await (ahead ?? this.readNext());
          ahead = undefined;
          if ('err' in read) throw read.err;
          if (read.entries.length > 0) {
            // The next batch is read while this one is prepared and committed (Redis serves the read first).
            ahead = this.readNext();
            const prepared = this.prepare(read.entries);
            await this.settle();
            this.startCommit(prepared);
          } else await this.settle();
        }
        this.health.lastSuccessAt = Date.now();
        this.health.lastError = null;
        failures = 0;
      } catch (err) {
        // A commit in flight lands or fails on its own; a batch read ahead is dropped. Entries not committed stay
        // pending for this consumer, and are read again from the start of its own (ownPendingDone).
        await this.settle().catch(() => undefined);
        await ahead;
        ahead = undefined;
        ownPendingDone = false;
        if (!this.running) break;
        const message = (err as Error).message;
        this.health.lastError = message;
        if (/NOGROUP/.test(message)) {
          await this.recover().catch((e: Error) => this.logger.warn(`recreating the consumer group failed: ${e.message}`));
          continue;
        }
        if (failures++ % 10 === 0) this.logger.warn(`reading timings failed: ${message}; retrying`);
        await sleep(Math.min(100 * 2 ** Math.min(failures, 5), 2000));
      }
    }
    // A batch read ahead is committed before the stop, rather than left pending until another analyzer's claim.
    const last = await ahead;
    try {
      await this.settle();
      if (last && 'entries' in last && last.entries.length > 0) await this.commit(this.prepare(last.entries));
    } catch (err) {
      this.logger.warn(`the last commit failed: ${(err as Error).message}; its entries stay pending for the next analyzer to take`);
    }
  }

  /** A read of new entries (blocking up to BLOCK_MS) that does not reject: its error comes as `err`. */
  private readNext(): Promise<Read> {
    return this.repo.next(BATCH, BLOCK_MS).then(
      (entries) => ({ entries }),
      (err: unknown) => ({ err: asError(err) }),
    );
  }

  /** The group is gone with Redis's data: create it again, record the gap, start counting afresh. */
  private async recover(): Promise<void> {
    if (!(await this.repo.ensureGroup())) return;
    const gap = {
      at: Date.now(),
      kind: 'data_lost' as const,
      counted_before: this.counted,
      message:
        `the timings consumer group was gone (Redis lost its data: a restart without persistence, a failover to an empty replica, or the keys were deleted); ` +
        `${this.counted} event(s) counted before went with it, and events written in the moment of the loss may be missing; counting what came after`,
    };
    this.counted = 0;
    this.lostBeforeRead = 0;
    await this.repo.recordGap(gap);
    this.logger.warn(gap.message);
    for (const listener of this.dataLostListeners) await listener();
  }

  /** Turns a batch into per-entry effects and commits them with the entries' acknowledgements. */
  async process(entries: StreamEntry[]): Promise<void> {
    await this.settle();
    await this.commit(this.prepare(entries));
  }

  /**
   * The batch's effects, and what each entry was (for the metrics of those the commit applies). `verdicts`, after
   * a commit that did not apply: entries found not pending for this analyzer (0) are left out, and those whose
   * event was counted before (2) go in as duplicates.
   */
  private prepare(entries: StreamEntry[], verdicts?: ReadonlyMap<string, number>): Prepared {
    const batch = new CommitBatch();
    const kinds: Prepared['kinds'] = [];
    const runMs: number[] = [];
    for (const [id, fields] of entries) {
      const verdict = verdicts?.get(id);
      const take = verdict !== 0;
      const duplicate = verdict === 2;
      // Deleted after delivery (trimmed): acknowledged with no effect; the account counts it as lost.
      if (fields === null) {
        if (take) batch.add(id, { counters: [] });
        kinds.push(null);
        runMs.push(0);
        continue;
      }
      const r = decodeTimingEvent(fields);
      if (!r.ok) {
        if (verdicts === undefined && this.malformedLogged++ < 10) this.logger.warn(`skipping malformed timing event ${id}: ${r.error}`);
        if (take) batch.add(id, { counters: ['malformed', 1] });
        kinds.push('malformed');
        runMs.push(0);
        continue;
      }
      const e = r.event;
      kinds.push(this.attemptMetrics(e));
      runMs.push(e.run_ms);
      if (!take) continue;
      const learns = e.test_file !== undefined && (e.outcome === 'completed' || e.reason === 'test_failed');
      batch.add(
        id,
        {
          identity: this.repo.identity(e.task_id, e.attempt, e.finished_at),
          duration: learns ? { key: `${e.pool}|${e.test_file}`, ms: e.run_ms } : undefined,
          counters: this.countersOf(e),
          samples: eventSamples(e, this.settings.config),
        },
        duplicate,
      );
    }
    return { entries, batch, kinds, runMs };
  }

  /**
   * The counters an event moves: events, the pool's completed or failed, and the pool's total run time of
   * completed tasks (with the count, the mean the resource manager scales by).
   */
  private countersOf(e: TimingEvent): Array<string | number> {
    let names = this.poolCounters.get(e.pool);
    if (names === undefined) {
      names = { completed: `completed:${e.pool}`, failed: `failed:${e.pool}`, runMs: `run_ms:${e.pool}` };
      this.poolCounters.set(e.pool, names);
    }
    return e.outcome === 'completed' ? ['events', 1, names.completed, 1, names.runMs, Math.round(e.run_ms)] : ['events', 1, names.failed, 1];
  }

  /**
   * Commits a prepared batch. A commit applies all of its entries or none (see COMMIT_BATCH); when one does not,
   * the batch is prepared again from its entries with what the commit found (entries another analyzer took
   * are left out, events counted before go in as duplicates) and committed again. Each round leaves out or
   * marks at least one entry, so the rounds end.
   */
  private async commit({ entries, batch, kinds, runMs }: Prepared): Promise<void> {
    let current = batch;
    let verdicts: Map<string, number> | undefined;
    while (current.size > 0) {
      const done = await this.repo.commit(current);
      if (done.applied) {
        this.counted = done.counted;
        break;
      }
      const next = new Map(verdicts);
      let moved = false;
      current.ids.forEach((id, i) => {
        const verdict = done.verdicts[i];
        if (verdict === 1) return;
        if (next.get(id) !== verdict) moved = true;
        next.set(id, verdict);
      });
      if (!moved) throw new Error('a commit found nothing to change and did not apply; its entries stay pending');
      verdicts = next;
      current = this.prepare(entries, verdicts).batch;
    }
    // Each entry's status (1 applied, 2 a duplicate, 0 not this commit's): by position when the first batch
    // applied, by ID after rounds that left entries out.
    const applied = current.statuses;
    const byId = verdicts === undefined ? undefined : new Map(current.ids.map((id, i) => [id, applied[i]]));
    const statuses = byId === undefined ? applied : entries.map(([id]) => byId.get(id) ?? 0);
    // Counted per batch, then added once per counter: prom-client looks up a child by its labels on each call.
    let processed = 0;
    let malformed = 0;
    let duplicates = 0;
    const attempts = new Map<AttemptMetrics, number>();
    statuses.forEach((status, i) => {
      const m = kinds[i];
      if (status === 0 || m === null || m === undefined) return;
      if (m === 'malformed') malformed++;
      else if (status === 2) duplicates++;
      else {
        processed++;
        attempts.set(m, (attempts.get(m) ?? 0) + 1);
        m.durations.observe(runMs[i] / 1000);
      }
    });
    if (processed > 0) this.eventsTotal.inc({ result: 'processed' }, processed);
    if (duplicates > 0) this.eventsTotal.inc({ result: 'duplicate' }, duplicates);
    if (malformed > 0) this.eventsTotal.inc({ result: 'malformed' }, malformed);
    for (const [m, n] of attempts) m.attempts.inc(n);
  }

  /** The attempt metrics' children for the event's labels (looked up once per label set, not per event). */
  private attemptMetrics(e: TimingEvent): AttemptMetrics {
    // By pool, then type and outcome: maps of the event's own strings, no key made per event.
    let byType = this.byLabels.get(e.pool);
    if (byType === undefined) this.byLabels.set(e.pool, (byType = new Map<string, Map<string, AttemptMetrics>>()));
    let byOutcome = byType.get(e.task_type);
    if (byOutcome === undefined) byType.set(e.task_type, (byOutcome = new Map<string, AttemptMetrics>()));
    let m = byOutcome.get(e.outcome);
    if (m === undefined) {
      const labels = { pool: e.pool, type: e.task_type, outcome: e.outcome };
      m = { attempts: this.attemptsTotal.labels(labels), durations: this.durations.labels(labels) };
      byOutcome.set(e.outcome, m);
    }
    return m;
  }

  /**
   * Starts committing a batch while the next is read and prepared: Redis runs one batch's commit while the
   * analyzer decodes the next, rather than each waiting on the other. At most one commit is in flight; its
   * failure surfaces at the next settle(). Entries read meanwhile stay pending for this consumer until a commit
   * takes them, as any read entry does, so a failed commit loses nothing (they are read again as this one's own).
   */
  private startCommit(prepared: Prepared): void {
    this.inFlight = this.commit(prepared).then(
      () => undefined,
      (err: unknown) => asError(err),
    );
  }

  /** Waits for the commit in flight, if any, and throws its error. */
  private async settle(): Promise<void> {
    const inFlight = this.inFlight;
    this.inFlight = undefined;
    const err = await inFlight;
    if (err !== undefined) throw err;
  }

  /**
   * Everything written is counted, pending, unread, or lost before it was read. The last figure is exact
   * when the group has been given every entry (then nothing is unread), and only grows in between.
   */
  async account(): Promise<{ events: EventsAccount; counters: Record<string, number> }> {
    const [a, gaps] = await Promise.all([this.repo.account(), this.repo.gaps()]);
    const c = (name: string) => a.counters[name] ?? 0;
    const delivered = c('events') + c('malformed') + c('duplicates') + a.pending;
    if (c('series_refused') > 0 && !this.seriesCapLogged) {
      this.seriesCapLogged = true;
      this.logger.warn(`max_series (${this.settings.config.maxSeries}) reached: samples of new series are refused and counted`);
    }
    if (a.caughtUp) this.lostBeforeRead = Math.max(0, a.written - delivered);
    else if (a.written < this.lostBeforeRead) this.lostBeforeRead = 0;
    const events = {
      processed: c('events'),
      malformed: c('malformed'),
      duplicates: c('duplicates'),
      written: a.written,
      stream_length: a.length,
      pending: a.pending,
      unread: Math.max(0, a.written - delivered - this.lostBeforeRead),
      lost_before_read: this.lostBeforeRead,
      gaps,
      series: {
        kept: a.series,
        max: this.settings.config.maxSeries,
        refused_samples: c('series_refused'),
        refused_derived_samples: c('series_refused_derived'),
      },
    };
    return { events, counters: a.counters };
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}
