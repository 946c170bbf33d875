import type { Redis } from 'ioredis';
import { encodeTimingEvent } from '@fleet/contracts';
import { FleetKeys } from '@fleet/redis';
import { type ConfigDir, cleanupPrefix, makeConfigDir, testRedis, uniquePrefix, waitFor } from '@fleet/testing';
import { type Analyzer, fastAnalyzerConfig, startAnalyzer } from './analyzer-harness.js';

describe('the trend analyzer reads the timings stream exactly once', () => {
  const prefix = uniquePrefix('restart');
  const keys = new FleetKeys(prefix);
  let config: ConfigDir;
  let redis: Redis;
  const analyzers: Analyzer[] = [];
  const EVENTS = 60_000;
  const MALFORMED = 50;

  beforeAll(async () => {
    config = makeConfigDir({ 'performance_analyzer_config.json': fastAnalyzerConfig({ metrics_grouping: ['pool', 'model_name'] }) });
    redis = testRedis();
    const now = Date.now();
    for (let start = 0; start < EVENTS; start += 1000) {
      const pipeline = redis.pipeline();
      for (let i = start; i < start + 1000; i++) {
        pipeline.xadd(
          keys.timings,
          '*',
          ...encodeTimingEvent({
            task_id: `cpu.${i}`,
            task_type: 'synthetic',
            pool: i % 2 ? 'cpu' : 'gpu',
            worker_id: `w${i % 4}`,
            attempt: 1,
            outcome: i % 50 === 0 ? 'failed' : 'completed',
            final: true,
            queued_at: now - 1000,
            started_at: now - 500,
            finished_at: now + i,
            wait_ms: 500,
            run_ms: 100 + (i % 7),
            metrics: { latency_ms: 10 + (i % 3) },
            labels: { model_name: `m${i % 3}` },
          }),
        );
        if (i % 1200 === 0) pipeline.xadd(keys.timings, '*', 'v', '1', 'task_id', 'broken', 'run_ms', 'soon');
      }
      await pipeline.exec();
    }
  });

  afterAll(async () => {
    await Promise.all(analyzers.map((a) => a.stop('SIGKILL')));
    await cleanupPrefix(redis, prefix);
    await redis.quit();
    config.remove();
  });

  /** Starts an analyzer and kills it with SIGKILL once it has counted at least `atLeast` events. */
  const killPartWay = async (id: string, atLeast: number): Promise<number> => {
    const a = await startAnalyzer({ prefix, configDir: config.path, id });
    analyzers.push(a);
    const counted = async () => Number((await redis.hget(`${prefix}:ta:counters`, 'events')) ?? 0);
    await waitFor(async () => (await counted()) >= atLeast, { what: `analyzer ${id} to count ${atLeast} events`, intervalMs: 2 });
    a.child.kill('SIGKILL');
    await a.exited;
    return counted();
  };

  it('counts every event once across SIGKILLs, a restart and another analyzer taking over, and skips malformed entries', async () => {
    const length = await redis.xlen(keys.timings);
    expect(length).toBe(EVENTS + MALFORMED);
    // Killed part way; restarted under the same name it first re-reads what it had been given (own pending).
    const afterFirst = await killPartWay('first', 3000);
    expect(afterFirst).toBeLessThan(EVENTS);
    const afterRestart = await killPartWay('first', afterFirst + 3000);
    expect(afterRestart).toBeLessThan(EVENTS);
    // A different analyzer takes over what 'first' left pending once it has been idle (XAUTOCLAIM).
    const second = await startAnalyzer({ prefix, configDir: config.path, id: 'second' });
    analyzers.push(second);
    const done = await waitFor(
      async () => {
        const s = await second.summary();
        return s.events.processed + s.events.malformed === length ? s : undefined;
      },
      { what: 'every event to be processed', timeoutMs: 30_000 },
    );
    expect(done.events).toMatchObject({
      processed: EVENTS,
      malformed: MALFORMED,
      duplicates: 0,
      written: length,
      pending: 0,
      lost_before_read: 0,
      gaps: [],
    });
    const pending = (await redis.xpending(keys.timings, keys.analyzerGroup)) as [number, ...unknown[]];
    expect(pending[0]).toBe(0);
    const pools = (await second.http.get('/metrics/summary').expect(200)).body.pools;
    expect(pools).toEqual({ cpu: { completed: EVENTS / 2, failed: 0 }, gpu: { completed: EVENTS / 2 - EVENTS / 50, failed: EVENTS / 50 } });
  });
});
