import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { type AnalyzerSettings, ANALYZER_SETTINGS } from './analyzer-settings.js';
import { bestEffort, checkLayout, createRedis, FleetKeys, pingWithin, waitUntilReady } from '@fleet/redis';
import { CLEAR_ALERT, APPEND_SAMPLES, COMMIT_BATCH, ESCALATE_ALERT, RAISE_ALERT, READ_SINCE } from './analyzer-scripts.js';
import { type EventSamples, parseSampleRow, type Sample, sampleRow, seriesKey } from './event-samples.js';

/** A stored sample, as the analysis reads it back. */
export type SeriesPoint = ReturnType<typeof parseSampleRow>;

/** An entry as XREADGROUP returns it; `fields` is null when the entry was deleted (trimmed) after delivery. */
export type StreamEntry = [id: string, fields: string[] | null];

/** What one entry adds, written together with the entry's acknowledgement. */
export interface EntryEffects {
  /** Identity of the event for de-duplication (task id and attempt); undefined for a malformed entry. */
  identity?: { bucket: string; member: string };
  /** A test file's duration to learn from: `<pool>|<file>` and milliseconds. */
  duration?: { key: string; ms: number };
  /** Counter names and increments: name, increment, name, increment… */
  counters: ReadonlyArray<string | number>;
  samples?: EventSamples;
}

/**
 * A batch of entries' effects, added up as COMMIT_BATCH applies them: its entries' IDs and identities one by one
 * (what Redis must check and acknowledge per entry), and everything else as totals: counters summed, each test
 * file's durations in order, and each series' new rows joined into one text. Redis made a Lua value of every
 * field of every entry when the batch carried entries whole, and that was most of a commit's cost there (see
 * docs/benchmark.md). An event whose identity came earlier in the batch is a duplicate: acknowledged and
 * counted as one, nothing else applied.
 */
export class CommitBatch {
  readonly ids: string[] = [];
  private readonly planned: number[] = [];
  /** Identities to check and record, by seen bucket, in the order the script answers for them. */
  private readonly identities = new Map<string, { members: string[]; known: Set<string> }>();
  /** Per entry, where its identity is in `identities` (bucket, place), if it sent one. */
  private readonly identityAt: Array<[bucket: string, at: number] | undefined> = [];
  private readonly counters = new Map<string, number>();
  private readonly durations = new Map<string, number[]>();
  /** Each series' new rows, by group and then metric (no series name is made per sample). */
  private readonly rows = new Map<string, Map<string, string[]>>();
  private low = '';
  private high = '';

  get size(): number {
    return this.ids.length;
  }

  /** What each entry becomes once the batch is applied: 1 applied, 2 a duplicate. */
  get statuses(): readonly number[] {
    return this.planned;
  }

  /** Adds an entry; `duplicate`: its identity is known to have been counted before (only acknowledged and counted as such). */
  add(id: string, effects: EntryEffects, duplicate = false): void {
    this.ids.push(id);
    if (this.low === '' || idBefore(id, this.low)) this.low = id;
    if (this.high === '' || idBefore(this.high, id)) this.high = id;
    const identity = effects.identity;
    let seen = identity && this.identities.get(identity.bucket);
    if (identity && seen === undefined) this.identities.set(identity.bucket, (seen = { members: [], known: new Set() }));
    if (duplicate || (identity && seen?.known.has(identity.member))) {
      // (Known from here on, so a later entry of the same event is a duplicate without asking Redis.)
      if (identity) seen?.known.add(identity.member);
      this.planned.push(2);
      this.identityAt.push(undefined);
      this.count('duplicates', 1);
      return;
    }
    this.planned.push(1);
    if (identity && seen) {
      this.identityAt.push([identity.bucket, seen.members.push(identity.member) - 1]);
      seen.known.add(identity.member);
    } else this.identityAt.push(undefined);
    const c = effects.counters;
    for (let i = 0; i + 1 < c.length; i += 2) this.count(String(c[i]), Number(c[i + 1]));
    if (effects.duration) {
      const list = this.durations.get(effects.duration.key);
      if (list === undefined) this.durations.set(effects.duration.key, [effects.duration.ms]);
      else list.push(effects.duration.ms);
    }
    const s = effects.samples;
    if (s === undefined) return;
    let metrics = this.rows.get(s.group);
    if (metrics === undefined) this.rows.set(s.group, (metrics = new Map<string, string[]>()));
    const prefix = `${s.at} `;
    for (let i = 0; i < s.metrics.length; i++) {
      const row = prefix + s.values[i] + s.suffix;
      const list = metrics.get(s.metrics[i]);
      if (list === undefined) metrics.set(s.metrics[i], [row]);
      else list.push(row);
    }
  }

  private count(name: string, by: number): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + by);
  }

  /** The script's arguments after its fixed ones: the lowest and highest IDs, then the sections (see COMMIT_BATCH). */
  args(): Array<string | number> {
    const out: Array<string | number> = [this.low, this.high, this.ids.length];
    for (const id of this.ids) out.push(id);
    const buckets = out.push(0) - 1;
    for (const [bucket, { members }] of this.identities) {
      if (members.length === 0) continue;
      out.push(bucket, members.length);
      for (const m of members) out.push(m);
      (out[buckets] as number)++;
    }
    out.push(this.counters.size);
    for (const [name, by] of this.counters) out.push(name, by);
    out.push(this.durations.size);
    for (const [key, values] of this.durations) {
      out.push(key, values.length);
      for (const v of values) out.push(v);
    }
    const at = out.push(0) - 1;
    let series = 0;
    for (const [group, metrics] of this.rows) {
      for (const [metric, rows] of metrics) {
        out.push(seriesKey(metric, group), rows.length, rows.join('\n'));
        series++;
      }
    }
    out[at] = series;
    return out;
  }

  /**
   * What a commit that did not apply (COMMIT_BATCH's -1 reply) says of each entry: 0 not pending for this
   * analyzer (left out of the next commit), 2 its identity was counted before (a duplicate next time), 1 neither.
   */
  verdicts(reply: readonly number[]): number[] {
    const offsets = new Map<string, number>();
    let offset = 1 + this.ids.length;
    for (const [bucket, { members }] of this.identities) {
      offsets.set(bucket, offset);
      offset += members.length;
    }
    return this.ids.map((_, i) => {
      if (reply[1 + i] !== 1) return 0;
      const at = this.identityAt[i];
      return at !== undefined && reply[(offsets.get(at[0]) ?? 0) + at[1]] === 1 ? 2 : 1;
    });
  }
}

/**
 * Stream IDs in Redis's order: `<ms>-<seq>`, both decimal without leading zeros, so a shorter number is the
 * smaller and numbers of one length compare as text (exact at any size, where Number would round past 2^53).
 */
export function idBefore(a: string, b: string): boolean {
  const da = a.indexOf('-');
  const db = b.indexOf('-');
  if (da !== db) return da < db;
  for (let i = 0; i < da; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return x < y;
  }
  if (a.length !== b.length) return a.length < b.length;
  return a < b;
}

export interface StoredAlert {
  id: string;
  event: 'raised' | 'escalated' | 'cleared';
  series: string;
  metric: string;
  group: string;
  severity: string;
  at: number;
  [key: string]: unknown;
}

/** A stretch of timing events the analyzer knows it could not count. */
export interface Gap {
  at: number;
  kind: 'data_lost';
  /** Events counted before the loss (those counts went with it). */
  counted_before: number;
  message: string;
}

/** The stream's bookkeeping, read in one transaction. */
export interface StreamAccount {
  /** Entries ever added to the stream (since its key was last created). */
  written: number;
  length: number;
  /** Delivered to an analyzer, not yet committed. */
  pending: number;
  /** True when the group has been given every entry there is. */
  caughtUp: boolean;
  /** Entries not yet delivered to the group (Redis's own count; null when it cannot tell, after trimming). */
  lag: number | null;
  counters: Record<string, number>;
  /** Series kept. */
  series: number;
}

const ALERTS_MAXLEN = 10_000;
const GAPS_KEPT = 100;
/** A repeated event arrives within seconds of the first; an hour's buckets kept three hours are ample. */
const SEEN_BUCKET_MS = 3_600_000;
const SEEN_TTL_S = 3 * 3600;

interface FleetScripts {
  commitBatch(...args: Array<string | number>): Promise<number[]>;
  appendSamples(...args: Array<string | number>): Promise<number>;
  raiseAlert(...args: Array<string | number>): Promise<number>;
  escalateAlert(...args: Array<string | number>): Promise<number>;
  clearAlert(...args: Array<string | number>): Promise<number>;
  readSince(...args: Array<string | number>): Promise<Array<[number, number, string[]]>>;
}

/**
 * The analyzer's timings, series and alerts in Redis. Timings are read through a consumer group; a batch's effects (samples
 * appended to per-series lists kept to `history_window`, counters) and its acknowledgement are one Lua script,
 * applied only when every entry is still pending for this analyzer and no event was counted before (else the
 * batch is committed again without those entries, or with them as duplicates): every event counts exactly once
 * across crashes, restarts, repeated writes and several analyzers.
 */
@Injectable()
export class AnalyzerRepository {
  private readonly logger = new Logger(AnalyzerRepository.name);
  readonly redis: Redis & FleetScripts;
  private readonly reader: Redis;
  readonly keys: FleetKeys;

  constructor(@Inject(ANALYZER_SETTINGS) private readonly settings: AnalyzerSettings) {
    this.keys = new FleetKeys(settings.prefix, settings.spread);
    this.redis = createRedis(settings.redisUrl, 'consumer', `trend-analyzer:${settings.analyzerId}`) as Redis & FleetScripts;
    this.redis.defineCommand('commitBatch', { numberOfKeys: 6, lua: COMMIT_BATCH });
    this.redis.defineCommand('appendSamples', { numberOfKeys: 4, lua: APPEND_SAMPLES });
    this.redis.defineCommand('raiseAlert', { numberOfKeys: 2, lua: RAISE_ALERT });
    this.redis.defineCommand('escalateAlert', { numberOfKeys: 2, lua: ESCALATE_ALERT });
    this.redis.defineCommand('clearAlert', { numberOfKeys: 2, lua: CLEAR_ALERT });
    this.redis.defineCommand('readSince', { numberOfKeys: 1, lua: READ_SINCE });
    this.reader = createRedis(settings.redisUrl, 'consumer', `trend-analyzer-reader:${settings.analyzerId}`);
  }

  private seriesList = (series: string) => this.keys.analyzerSeries(series);
  private get seriesIndex() {
    return this.keys.analyzerSeriesIndex;
  }
  private get countersKey() {
    return this.keys.analyzerCounters;
  }
  private get activeAlertsKey() {
    return this.keys.analyzerActiveAlerts;
  }
  private get gapsKey() {
    return this.keys.analyzerGaps;
  }

  async open(): Promise<void> {
    await waitUntilReady(this.redis, this.settings.redisUrl, 15_000);
    await checkLayout(this.redis, this.keys);
    await this.ensureGroup();
  }

  /** Creates the consumer group (and the stream) unless it exists; true when it had to be created. */
  async ensureGroup(): Promise<boolean> {
    try {
      await this.redis.xgroup('CREATE', this.keys.timings, this.keys.analyzerGroup, '0', 'MKSTREAM');
      return true;
    } catch (err) {
      if (/BUSYGROUP/.test((err as Error).message)) return false;
      throw err;
    }
  }

  /** Entries delivered to this consumer earlier and never acknowledged (it died mid-batch). */
  async ownPending(count: number): Promise<StreamEntry[]> {
    return this.read('0', count, undefined);
  }

  /** New entries, waiting up to `blockMs` for some. */
  async next(count: number, blockMs: number): Promise<StreamEntry[]> {
    return this.read('>', count, blockMs);
  }

  private async read(from: string, count: number, blockMs: number | undefined): Promise<StreamEntry[]> {
    const args: Array<string | number> = ['GROUP', this.keys.analyzerGroup, this.settings.analyzerId, 'COUNT', count];
    if (blockMs !== undefined) args.push('BLOCK', blockMs);
    args.push('STREAMS', this.keys.timings, from);
    const reply = (await (this.reader.xreadgroup as (...a: Array<string | number>) => Promise<unknown>)(...args)) as Array<
      [string, StreamEntry[]]
    > | null;
    return reply?.[0]?.[1] ?? [];
  }

  /** Takes over entries another consumer left pending longer than `claim_idle_ms` (it died). */
  async claimAbandoned(count: number): Promise<StreamEntry[]> {
    const reply = (await this.redis.xautoclaim(
      this.keys.timings,
      this.keys.analyzerGroup,
      this.settings.analyzerId,
      this.settings.config.claimIdleMs,
      '0-0',
      'COUNT',
      count,
    )) as [string, StreamEntry[]];
    return reply[1] ?? [];
  }

  /**
   * Applies and acknowledges a batch, all of it or nothing (see COMMIT_BATCH): once applied, the events counter
   * after the commit; otherwise what each entry was found to be (CommitBatch.verdicts), to commit again without
   * what is not this analyzer's.
   */
  async commit(batch: CommitBatch): Promise<{ applied: true; counted: number } | { applied: false; verdicts: number[] }> {
    const reply = await this.redis.commitBatch(
      this.keys.timings,
      this.countersKey,
      this.seriesIndex,
      this.keys.testDurations,
      this.keys.analyzerSeriesVersions,
      this.keys.analyzerSeriesHeld,
      this.keys.analyzerGroup,
      this.keys.analyzerSeriesPrefix,
      this.keys.analyzerSeriesCountsPrefix,
      this.keys.analyzerSeenPrefix,
      SEEN_TTL_S,
      this.settings.config.historyWindow,
      this.settings.config.maxSeries,
      this.settings.analyzerId,
      ...batch.args(),
    );
    return reply[0] === -1 ? { applied: false, verdicts: batch.verdicts(reply) } : { applied: true, counted: reply[0] ?? 0 };
  }

  /** De-duplication identity of a task attempt's event. */
  identity(taskId: string, attempt: number, finishedAt: number): { bucket: string; member: string } {
    return { bucket: String(Math.floor(finishedAt / SEEN_BUCKET_MS)), member: `${taskId}#${attempt}` };
  }

  /** The stream's bookkeeping and the counters in one transaction, so they agree with each other. */
  async account(): Promise<StreamAccount> {
    const replies = await this.redis
      .multi()
      .xinfo('STREAM', this.keys.timings)
      .xinfo('GROUPS', this.keys.timings)
      .hgetall(this.countersKey)
      .scard(this.seriesIndex)
      .exec();
    if (!replies) throw new Error('transaction aborted');
    // A stream that does not exist (yet, or any more after a loss of data) has had nothing written.
    const noStream = replies[0]?.[0] && /no such key/i.test(replies[0][0].message);
    const failed = replies.find(([err]) => err);
    if (failed && !noStream) throw failed[0] as Error;
    const stream = noStream ? {} : fieldsOf(replies[0]?.[1] as unknown[]);
    const group = noStream ? undefined : ((replies[1]?.[1] as unknown[][]) ?? []).map(fieldsOf).find((g) => g.name === this.keys.analyzerGroup);
    const counters = Object.fromEntries(Object.entries(replies[2]?.[1] as Record<string, string>).map(([k, v]) => [k, Number(v)]));
    return {
      written: Number(stream['entries-added'] ?? 0),
      length: Number(stream.length ?? 0),
      pending: Number(group?.pending ?? 0),
      caughtUp: noStream || (group !== undefined && group['last-delivered-id'] === stream['last-generated-id']),
      lag: noStream ? 0 : group?.lag === undefined || group.lag === null ? null : Number(group.lag),
      counters,
      series: Number(replies[3]?.[1] ?? 0),
    };
  }

  async recordGap(gap: Gap): Promise<void> {
    await this.redis
      .multi()
      .lpush(this.gapsKey, JSON.stringify(gap))
      .ltrim(this.gapsKey, 0, GAPS_KEPT - 1)
      .exec();
  }

  async gaps(): Promise<Gap[]> {
    return (await this.redis.lrange(this.gapsKey, 0, -1)).map((g) => JSON.parse(g) as Gap);
  }

  async counters(): Promise<Record<string, number>> {
    const raw = await this.redis.hgetall(this.countersKey);
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Number(v)]));
  }

  /**
   * Every series with its samples in time order. Workers finish tasks out of order, so the order samples
   * were appended in is not time order; analysing in time order means a sample is never evaluated twice.
   */
  async allSeries(): Promise<Map<string, SeriesPoint[]>> {
    return this.readSeries((await this.redis.smembers(this.seriesIndex)).sort());
  }

  /**
   * Every kept series with how many samples were ever appended to it (its version): a series whose version has
   * not moved has the samples it had. A series kept before versions were counted reads as version -1.
   */
  async seriesVersions(): Promise<Map<string, number>> {
    const [[, names], [, versions]] = ((await this.redis.multi().smembers(this.seriesIndex).hgetall(this.keys.analyzerSeriesVersions).exec()) ??
      []) as [[unknown, string[]], [unknown, Record<string, string>]];
    return new Map(names.sort().map((n) => [n, versions[n] === undefined ? -1 : Number(versions[n])]));
  }

  /**
   * Per series, what was appended since `known` (the version the caller read it at; -1 for none): the version it
   * is at now, and the rows since, oldest first, or the whole list (`whole`) where the rows since cannot be told
   * apart (see READ_SINCE). A pass of the analysis reads what arrived, not what is kept.
   */
  async readSince(known: ReadonlyMap<string, number>): Promise<Map<string, { version: number; whole: boolean; appended: SeriesPoint[] }>> {
    const out = new Map<string, { version: number; whole: boolean; appended: SeriesPoint[] }>();
    if (known.size === 0) return out;
    const names = [...known.keys()];
    const replies = await this.redis.readSince(
      this.keys.analyzerSeriesVersions,
      this.keys.analyzerSeriesPrefix,
      this.settings.config.historyWindow,
      ...names.flatMap((n) => [n, known.get(n) ?? -1]),
    );
    const window = this.settings.config.historyWindow;
    names.forEach((n, i) => {
      const [version, whole, elements] = replies[i] ?? [-1, 1, []];
      const since = version - (known.get(n) ?? -1);
      out.set(n, { version, whole: whole === 1, appended: lastRows(elements, whole === 1 ? window : since).map(parseSampleRow) });
    });
    return out;
  }

  /** The named series with their samples in time order (see allSeries). */
  private async readSeries(names: readonly string[]): Promise<Map<string, SeriesPoint[]>> {
    const pipeline = this.redis.pipeline();
    for (const n of names) pipeline.lrange(this.seriesList(n), 0, -1);
    const replies = (await pipeline.exec()) ?? [];
    const out = new Map<string, SeriesPoint[]>();
    names.forEach((n, i) => {
      const reply = replies[i];
      const rows = lastRows((reply?.[1] as string[] | undefined) ?? [], this.settings.config.historyWindow).map(parseSampleRow);
      out.set(
        n,
        rows.sort((a, b) => a.at - b.at),
      );
    });
    return out;
  }

  /** Appends derived samples, under `max_series` as ingest's are (a new series past it is refused and counted). */
  async appendSamples(samples: Sample[]): Promise<void> {
    if (samples.length === 0) return;
    const c = this.settings.config;
    await this.redis.appendSamples(
      this.seriesIndex,
      this.countersKey,
      this.keys.analyzerSeriesVersions,
      this.keys.analyzerSeriesHeld,
      c.maxSeries,
      c.historyWindow,
      this.keys.analyzerSeriesPrefix,
      this.keys.analyzerSeriesCountsPrefix,
      ...samples.flatMap((s) => [s.series, sampleRow(s)]),
    );
  }

  /** One analyzer per period records the derived rates: the first to claim the slot. */
  async claimPeriod(period: number, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(this.keys.analyzerPeriod(period), this.settings.analyzerId, 'PX', ttlMs, 'NX')) === 'OK';
  }

  async activeAlerts(): Promise<Map<string, Record<string, unknown>>> {
    const raw = await this.redis.hgetall(this.activeAlertsKey);
    return new Map(Object.entries(raw).map(([k, v]) => [k, JSON.parse(v) as Record<string, unknown>]));
  }

  /**
   * Raises, escalates or clears the series' alert and appends the event to the alerts stream, atomically and
   * only if the transition still applies (another analyzer may have made it): each happens once per regression.
   */
  async transitionAlert(event: 'raised' | 'escalated' | 'cleared', series: string, alert: Record<string, unknown>): Promise<boolean> {
    const fields = Object.entries({ ...alert, event, series }).flatMap(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]);
    const args = [this.activeAlertsKey, this.keys.alerts, series, JSON.stringify(alert), ALERTS_MAXLEN, ...fields];
    const r = this.redis;
    const done =
      event === 'raised' ? await r.raiseAlert(...args) : event === 'escalated' ? await r.escalateAlert(...args) : await r.clearAlert(...args);
    return done === 1;
  }

  async alertHistory(limit: number): Promise<StoredAlert[]> {
    const rows = await this.redis.xrevrange(this.keys.alerts, '+', '-', 'COUNT', limit);
    return rows.map(([id, fields]) => {
      const a: Record<string, unknown> = { id };
      for (let i = 0; i + 1 < fields.length; i += 2) {
        const raw = fields[i + 1];
        let v: unknown = raw;
        try {
          v = JSON.parse(raw);
        } catch {
          // a plain string
        }
        a[fields[i]] = v;
      }
      return a as StoredAlert;
    });
  }

  /** Bounded: `/health` answers 503 within a second when Redis is away. */
  async ping(): Promise<void> {
    await pingWithin(this.redis);
  }

  async close(): Promise<void> {
    this.reader.disconnect();
    await bestEffort(this.redis.quit(), 'QUIT');
    this.redis.disconnect();
    this.logger.log('closed');
  }
}

/**
 * The last `count` rows of a series list's elements, oldest first: an element holds one row or several,
 * separated by newlines (see KEEP_WINDOW in analyzer-scripts.ts).
 */
export function lastRows(elements: readonly string[], count: number): string[] {
  if (count <= 0) return [];
  const rows: string[] = [];
  for (const e of elements) {
    if (e.includes('\n')) for (const row of e.split('\n')) rows.push(row);
    else rows.push(e);
  }
  return rows.length > count ? rows.slice(rows.length - count) : rows;
}

/** XINFO's flat [name, value, …] reply as an object. */
function fieldsOf(reply: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = reply[i + 1];
  return out;
}
