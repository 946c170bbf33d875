import { parseAnalyzerConfig } from '@fleet/config';
import { type AnalyzerSettings } from '../../apps/trend-analyzer/src/analyzer-settings.js';
import { encodeTimingEvent, type TimingEvent } from '@fleet/contracts';
import { AppMetrics } from '@fleet/ops';
import { isolatedSuite, waitFor } from '@fleet/testing';
import { AnalyzerRepository, lastRows } from '../../apps/trend-analyzer/src/analyzer.repository.js';
import { IngestService } from '../../apps/trend-analyzer/src/ingest.service.js';

const event = (i: number, attempt = 1): TimingEvent => ({
  task_id: `cpu.${i}`,
  task_type: 'synthetic',
  pool: 'cpu',
  worker_id: 'w',
  attempt,
  outcome: 'completed',
  final: true,
  queued_at: 1_000,
  started_at: 2_000,
  finished_at: 3_000 + i,
  wait_ms: 1000,
  run_ms: 1000 + i,
  metrics: {},
  labels: {},
});

describe('the trend analyzer counts every task attempt exactly once', () => {
  const suite = isolatedSuite('exactly', {});
  /** An analyzer's repository and ingest, in this process, so a test can interleave two of them step by step. */
  const analyzer = async (id: string) => {
    const settings: AnalyzerSettings = {
      redisUrl: suite.redisUrl,
      prefix: suite.prefix,
      spread: 'none',
      configDir: suite.config.path,
      shutdownGraceMs: 1000,
      port: 0,
      security: { host: '127.0.0.1', clients: null, rateLimitPerMinute: 1000, maxQueuedPerClient: 1000, corsOrigins: [], insecure: false },
      analyzerId: id,
      readyMaxLag: 100_000,
      // Claim anything pending at once: the test decides when a claim happens.
      config: { ...parseAnalyzerConfig({}).value, claimIdleMs: 0 },
      warnings: [],
    };
    const repo = new AnalyzerRepository(settings);
    await repo.open();
    suite.onCleanup(() => repo.close());
    const metrics = new AppMetrics();
    /** What this analyzer's /metrics says it processed (its share: summed over analyzers, each event once). */
    const processed = async () =>
      (await metrics.registry.getSingleMetric('fleet_timing_events_total')?.get())?.values.find((v) => v.labels.result === 'processed')?.value ?? 0;
    return { repo, ingest: new IngestService(settings, repo, metrics), processed };
  };
  /** A series' rows as its list holds them (an element holds one row or more). */
  const rowsOf = async (series: string) => lastRows(await suite.redis.lrange(suite.keys.analyzerSeries(series), 0, -1), Infinity);
  const write = (events: TimingEvent[]) => Promise.all(events.map((e) => suite.redis.xadd(suite.keys.timings, '*', ...encodeTimingEvent(e))));

  it('a batch another analyzer claimed (XAUTOCLAIM) before the first committed it counts once, whoever commits', async () => {
    const a = await analyzer('a');
    const b = await analyzer('b');
    await write(Array.from({ length: 10 }, (_, i) => event(i)));
    const delivered = await a.repo.next(100, 100);
    expect(delivered).toHaveLength(10);
    // a stalls between reading and committing; b takes the batch over, and both commit it.
    const claimed = await b.repo.claimAbandoned(100);
    expect(claimed).toHaveLength(10);
    await b.ingest.process(claimed);
    await a.ingest.process(delivered);
    const { events } = await a.ingest.account();
    expect(events).toMatchObject({ processed: 10, duplicates: 0, pending: 0, written: 10 });
    expect((await a.processed()) + (await b.processed())).toBe(10);
    expect(Number(await suite.redis.hget(`${suite.prefix}:ta:counters`, 'completed:cpu'))).toBe(10);
    expect(await rowsOf('run_time_ms|task_type=synthetic,pool=cpu')).toHaveLength(10);
  });

  it('a batch part of which another analyzer took over is committed without that part, which counts once when its new owner commits', async () => {
    const a = await analyzer('a1');
    const b = await analyzer('b1');
    const before = (await a.ingest.account()).events;
    const series = 'run_time_ms|task_type=synthetic,pool=cpu';
    const rowsBefore = (await rowsOf(series)).length;
    // Events 200-205; the last two entries write again the (task, attempt) of 200 and 201 (repeated writes).
    await write([...Array.from({ length: 6 }, (_, i) => event(200 + i)), event(200), event(201)]);
    const delivered = await a.repo.next(100, 100);
    expect(delivered).toHaveLength(8);
    // b takes over the entries of 201 and of the repeat of 200 (a stalled on them) and commits them first: 201
    // counts, and so does the repeat of 200 (b has not seen the first write of 200, which is still a's).
    const taken = [delivered[1][0], delivered[6][0]];
    await suite.redis.xclaim(suite.keys.timings, suite.keys.analyzerGroup, 'b1', 0, ...taken);
    await b.ingest.process(delivered.filter(([id]) => taken.includes(id)));
    // a's commit of all eight does not apply; it commits again without b's two, with the first write of 200
    // and the repeat of 201 as duplicates.
    await a.ingest.process(delivered);
    const { events } = await a.ingest.account();
    expect(events.processed - before.processed).toBe(6);
    expect(events.duplicates - before.duplicates).toBe(2);
    expect(events.written - before.written).toBe(8);
    expect(events.pending).toBe(0);
    expect(await b.processed()).toBe(2);
    expect(await a.processed()).toBe(4);
    const rows = (await rowsOf(series)).slice(rowsBefore);
    expect(rows.map((r) => r.split(' ')[2]).sort()).toEqual(['cpu.200', 'cpu.201', 'cpu.202', 'cpu.203', 'cpu.204', 'cpu.205']);
  });

  it('an event written twice (a worker repeated a write it could not confirm) counts once; another attempt of the same task counts', async () => {
    const a = await analyzer('a2');
    const before = (await a.ingest.account()).events;
    await write([event(100), event(100), event(100, 2)]);
    await a.ingest.process(await a.repo.next(100, 100));
    const { events } = await a.ingest.account();
    expect(events.processed - before.processed).toBe(2);
    expect(events.duplicates - before.duplicates).toBe(1);
  });

  it('an event carrying half a surrogate pair is counted malformed and does not stop ingest', async () => {
    const a = await analyzer('a5');
    // JSON's escapes can carry half a pair; the URI encoding of the event's sample rows refuses it, so an event
    // that reached the commit with one would fail every commit of its batch, for good.
    const body = JSON.stringify(event(5000)).replace('"labels":{}', '"labels":{"commit":"\\ud800"}');
    await suite.redis.xadd(suite.keys.timings, '*', 'v', '2', 'e', body);
    await write([event(5001)]);
    const before = (await a.ingest.account()).events;
    await a.ingest.process(await a.repo.next(100, 100));
    const { events } = await a.ingest.account();
    expect(events.malformed - before.malformed).toBe(1);
    expect(events.processed - before.processed).toBe(1);
    expect(events.pending).toBe(0);
  });

  it('a stop leaves nothing pending: the batch read ahead of the commit in flight is committed too', async () => {
    const a = await analyzer('a4');
    for (let from = 0; from < 20_000; from += 1000) {
      const p = suite.redis.pipeline();
      for (let i = from; i < from + 1000; i++) p.xadd(suite.keys.timings, '*', ...encodeTimingEvent(event(1000 + i)));
      await p.exec();
    }
    a.ingest.start();
    // Mid-stream: a batch is committed, the next is read ahead, and most of the stream is still unread.
    await waitFor(async () => (await a.ingest.account()).events.processed >= 1000 || undefined, { what: 'a first commit' });
    await a.ingest.stop();
    const { events } = await a.ingest.account();
    expect(events.pending).toBe(0);
    expect(events.processed + events.duplicates + events.malformed + events.unread).toBe(events.written);
    expect(events.unread).toBeGreaterThan(0);
  });

  it('an alert is escalated once when two analyzers both see it get worse', async () => {
    const a = await analyzer('a3');
    const b = await analyzer('b3');
    const alert = { metric: 'run_time_ms', group: 'pool=cpu', severity: 'warning' };
    expect(await a.repo.transitionAlert('raised', 'run_time_ms|pool=cpu', alert)).toBe(true);
    expect(await b.repo.transitionAlert('raised', 'run_time_ms|pool=cpu', alert)).toBe(false);
    const critical = { ...alert, severity: 'critical' };
    const escalated = await Promise.all([
      a.repo.transitionAlert('escalated', 'run_time_ms|pool=cpu', critical),
      b.repo.transitionAlert('escalated', 'run_time_ms|pool=cpu', critical),
    ]);
    expect(escalated.filter(Boolean)).toHaveLength(1);
    expect((await a.repo.alertHistory(10)).map((h) => h.event).sort()).toEqual(['escalated', 'raised']);
  });
});

describe('timing events trimmed from the stream before any analyzer read them', () => {
  const suite = isolatedSuite('trimmed', { 'performance_analyzer_config.json': { polling_interval: 0.3, claim_idle_ms: 1000 } });

  it('are reported as lost_before_read; everything written is accounted for', async () => {
    const analyzer = await suite.service('trend-analyzer');
    await analyzer.stop('SIGTERM');
    // Written while no analyzer runs, into a stream capped at 100 entries (MAXLEN ~, as workers write).
    for (let i = 0; i < 1000; i++) await suite.redis.xadd(suite.keys.timings, 'MAXLEN', '~', 100, '*', ...encodeTimingEvent(event(i)));
    const again = await suite.service('trend-analyzer');
    const events = await waitFor(
      async () => {
        const e = (await again.http.get('/metrics/summary').expect(200)).body.events;
        return e.unread === 0 && e.pending === 0 && e.processed > 0 ? e : undefined;
      },
      { what: 'the analyzer to read what is left' },
    );
    expect(events.written).toBe(1000);
    expect(events.lost_before_read).toBeGreaterThan(800);
    expect(events.processed + events.lost_before_read).toBe(1000);
  });
});
