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
  const EVENTS = 30_000;
  const MALFORMED = 25;

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

  it('counts every event once across a SIGKILL and a new analyzer taking over, and skips malformed entries', async () => {
    const length = await redis.xlen(keys.timings);
    expect(length).toBe(EVENTS + MALFORMED);
    const first = await startAnalyzer({ prefix, configDir: config.path, id: 'first' });
    analyzers.push(first);
    await waitFor(async () => (await first.summary()).events.processed >= 3000, {
      what: 'the first analyzer to be part way through',
      intervalMs: 10,
    });
    first.child.kill('SIGKILL');
    await first.exited;
    const partial = await redis.hgetall(`${prefix}:ta:counters`);
    expect(Number(partial.events ?? 0) + Number(partial.malformed ?? 0)).toBeLessThan(length);

    const second = await startAnalyzer({ prefix, configDir: config.path, id: 'second' });
    analyzers.push(second);
    const done = await waitFor(
      async () => {
        const s = await second.summary();
        return s.events.processed + s.events.malformed === length ? s : undefined;
      },
      { what: 'every event to be processed', timeoutMs: 30_000 },
    );
    expect(done.events).toEqual({ processed: EVENTS, malformed: MALFORMED, stream_length: length });
    const pending = (await redis.xpending(keys.timings, keys.analyzerGroup)) as [number, ...unknown[]];
    expect(pending[0]).toBe(0);
    const pools = (await second.http.get('/metrics/summary').expect(200)).body.pools;
    expect(pools).toEqual({ cpu: { completed: 15_000, failed: 0 }, gpu: { completed: 14_400, failed: 600 } });
  });
});
