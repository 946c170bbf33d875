import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { AnalyzerSettings } from '@fleet/config';
import { createRedis, FleetKeys, waitUntilReady } from '@fleet/redis';
import { ANALYZER_SETTINGS } from './analyzer-settings.js';
import type { Sample } from './event-samples.js';

export type StreamEntry = [id: string, fields: string[]];

/** What one batch of events changes, written together with the acknowledgement of those events. */
export interface BatchEffects {
  ids: string[];
  samples: Sample[];
  counters: Map<string, number>;
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

const ALERTS_MAXLEN = 10_000;

/**
 * The analyzer's only door to Redis. Timings are read through a consumer group; a batch's effects (samples
 * appended to per-series lists trimmed to `history_window`, counters) and its XACK go in one MULTI, so a
 * crash either applies a batch and acknowledges it, or does neither and the batch is read again: every
 * event counts exactly once, across restarts and across analyzers sharing the group.
 */
@Injectable()
export class AnalyzerRepository {
  private readonly logger = new Logger(AnalyzerRepository.name);
  readonly redis: Redis;
  private readonly reader: Redis;
  readonly keys: FleetKeys;
  private readonly base: string;

  constructor(@Inject(ANALYZER_SETTINGS) private readonly settings: AnalyzerSettings) {
    this.keys = new FleetKeys(settings.prefix);
    this.base = `${settings.prefix}:ta`;
    this.redis = createRedis(settings.redisUrl, 'consumer', `trend-analyzer:${settings.analyzerId}`);
    this.reader = createRedis(settings.redisUrl, 'consumer', `trend-analyzer-reader:${settings.analyzerId}`);
  }

  private seriesList = (series: string) => `${this.base}:s:${series}`;
  private get seriesIndex() {
    return `${this.base}:series`;
  }
  private get countersKey() {
    return `${this.base}:counters`;
  }
  private get activeAlertsKey() {
    return `${this.base}:alerts:active`;
  }

  async open(): Promise<void> {
    await waitUntilReady(this.redis, this.settings.redisUrl, 15_000);
    try {
      await this.redis.xgroup('CREATE', this.keys.timings, this.keys.analyzerGroup, '0', 'MKSTREAM');
    } catch (err) {
      if (!/BUSYGROUP/.test((err as Error).message)) throw err;
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
    return reply?.[0]?.[1]?.filter((e) => e[1] !== null) ?? [];
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
    return (reply[1] ?? []).filter((e) => e[1] !== null);
  }

  async commit(b: BatchEffects): Promise<void> {
    if (b.ids.length === 0) return;
    const bySeries = new Map<string, string[]>();
    for (const s of b.samples) {
      const list = bySeries.get(s.series) ?? [];
      list.push(`${s.at} ${s.value}`);
      bySeries.set(s.series, list);
    }
    const multi = this.redis.multi();
    for (const [series, values] of bySeries) {
      multi.rpush(this.seriesList(series), ...values);
      multi.ltrim(this.seriesList(series), -this.settings.config.historyWindow, -1);
    }
    if (bySeries.size > 0) multi.sadd(this.seriesIndex, ...bySeries.keys());
    for (const [name, n] of b.counters) multi.hincrby(this.countersKey, name, n);
    multi.xack(this.keys.timings, this.keys.analyzerGroup, ...b.ids);
    const replies = await multi.exec();
    const failed = replies?.find(([err]) => err);
    if (failed) throw failed[0] as Error;
  }

  async counters(): Promise<Record<string, number>> {
    const raw = await this.redis.hgetall(this.countersKey);
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Number(v)]));
  }

  /**
   * Every series with its samples in time order. Workers finish tasks out of order, so the order samples
   * were appended in is not time order; analysing in time order means a sample is never evaluated twice.
   */
  async allSeries(): Promise<Map<string, Array<{ at: number; value: number }>>> {
    const names = (await this.redis.smembers(this.seriesIndex)).sort();
    const pipeline = this.redis.pipeline();
    for (const n of names) pipeline.lrange(this.seriesList(n), 0, -1);
    const replies = (await pipeline.exec()) ?? [];
    const out = new Map<string, Array<{ at: number; value: number }>>();
    names.forEach((n, i) => {
      const reply = replies[i];
      const rows = ((reply?.[1] as string[] | undefined) ?? []).map((row) => {
        const space = row.indexOf(' ');
        return { at: Number(row.slice(0, space)), value: Number(row.slice(space + 1)) };
      });
      out.set(
        n,
        rows.sort((a, b) => a.at - b.at),
      );
    });
    return out;
  }

  async appendSamples(samples: Sample[]): Promise<void> {
    if (samples.length === 0) return;
    const multi = this.redis.multi();
    for (const s of samples) {
      multi.rpush(this.seriesList(s.series), `${s.at} ${s.value}`);
      multi.ltrim(this.seriesList(s.series), -this.settings.config.historyWindow, -1);
      multi.sadd(this.seriesIndex, s.series);
    }
    await multi.exec();
  }

  /** One analyzer per period records the derived rates: the first to claim the slot. */
  async claimPeriod(period: number, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(`${this.base}:period:${period}`, this.settings.analyzerId, 'PX', ttlMs, 'NX')) === 'OK';
  }

  async activeAlerts(): Promise<Map<string, Record<string, unknown>>> {
    const raw = await this.redis.hgetall(this.activeAlertsKey);
    return new Map(Object.entries(raw).map(([k, v]) => [k, JSON.parse(v) as Record<string, unknown>]));
  }

  /** Raises an alert unless another analyzer already did (HSETNX): exactly one per regression. */
  async raiseAlert(series: string, alert: Record<string, unknown>): Promise<boolean> {
    if ((await this.redis.hsetnx(this.activeAlertsKey, series, JSON.stringify(alert))) !== 1) return false;
    await this.appendAlert({ ...alert, event: 'raised', series });
    return true;
  }

  async updateAlert(series: string, alert: Record<string, unknown>, event: 'escalated' | 'cleared'): Promise<void> {
    if (event === 'cleared') {
      if ((await this.redis.hdel(this.activeAlertsKey, series)) !== 1) return;
    } else {
      await this.redis.hset(this.activeAlertsKey, series, JSON.stringify(alert));
    }
    await this.appendAlert({ ...alert, event, series });
  }

  private async appendAlert(alert: Record<string, unknown>): Promise<void> {
    const fields = Object.entries(alert).flatMap(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]);
    await this.redis.xadd(this.keys.alerts, 'MAXLEN', '~', ALERTS_MAXLEN, '*', ...fields);
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

  async streamLength(): Promise<number> {
    return this.redis.xlen(this.keys.timings);
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  async close(): Promise<void> {
    this.reader.disconnect();
    await this.redis.quit().catch(() => this.redis.disconnect());
    this.logger.log('closed');
  }
}
