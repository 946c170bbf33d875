// The analyzer at fleet scale: 1,000 series (250 groups × 4 metrics) filled to their history window from a
// pre-filled timings stream. Ingest (events/s and the samples/s they make) against bare reading of the
// same stream (see streamFloor), and analysis throughput: new samples analysed per second of the passes' own time.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { encodeTimingEvent } from '@fleet/contracts';
import { deleteMatching, FleetKeys } from '@fleet/redis';
import { freePort, type Proc, run, until } from './bench-support.js';
import { streamFloor } from './stream-floor.js';

const GROUPS = 250;
/** Samples each event makes: run time, queue wait, latency_ms, memory_mb. */
const SAMPLES_PER_EVENT = 4;

export async function analysisBench(opts: {
  redis: Redis;
  url: string;
  dist: (...p: string[]) => string;
  perSeries: number;
  log: (m: string) => void;
  nodeFlags: string[];
}) {
  const prefix = `bench-${process.pid}-analysis`;
  const keys = new FleetKeys(prefix);
  const dir = mkdtempSync(join(tmpdir(), 'fleet-analysis-'));
  writeFileSync(
    join(dir, 'performance_analyzer_config.json'),
    JSON.stringify({
      polling_interval: 0.5,
      history_window: Math.max(200, opts.perSeries),
      metrics_to_track: ['latency_ms', 'memory_mb'],
      metrics_grouping: ['task_type', 'model_name'],
      reporting: {
        generate_charts: false,
        alert_thresholds: { run_time_ms: { warning: 1.08, critical: 1.5 }, latency_ms: { warning: 1.5, critical: 2 } },
      },
    }),
  );
  const events = GROUPS * opts.perSeries;
  const now = Date.now();
  for (let i = 0; i < events; i += 1000) {
    const p = opts.redis.pipeline();
    for (let j = i; j < Math.min(events, i + 1000); j++) {
      const step = j >= events * 0.8 && j % GROUPS < 5 ? 1.6 : 1; // a few groups regress near the end
      p.xadd(
        keys.timings,
        '*',
        ...encodeTimingEvent({
          task_id: `a.${j}`,
          task_type: 'benchmark',
          pool: 'bench',
          worker_id: `w${j % 8}`,
          attempt: 1,
          outcome: 'completed',
          final: true,
          queued_at: now,
          started_at: now + 1,
          finished_at: now + 2 + j,
          wait_ms: 1 + (j % 5),
          run_ms: Math.round((100 + ((j * 7919) % 23)) * step),
          metrics: { latency_ms: 5 + ((j * 31) % 7), memory_mb: 100 + (j % 3) },
          labels: { model_name: `m${j % GROUPS}` },
        }),
      );
    }
    await p.exec();
  }
  const floor = await streamFloor(opts.redis, keys.timings);
  const port = await freePort();
  const analyzer: Proc = run([...opts.nodeFlags, opts.dist('apps', 'trend-analyzer', 'src', 'main.js')], {
    REDIS_URL: opts.url,
    FLEET_PREFIX: prefix,
    CONFIG_DIR: dir,
    TREND_ANALYZER_PORT: String(port),
  });
  const counted = async () => Number((await opts.redis.hget(keys.analyzerCounters, 'events')) ?? 0);
  const health = async () =>
    ((await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { analysis: { samples_analysed: number; busy_ms: number } }).analysis;
  try {
    const n0 = await until(async () => (await counted()) || false, 'the analyzer to start counting', 60_000, 2);
    const t0 = performance.now();
    await until(async () => (await counted()) >= events, 'every event counted', 300_000, 5);
    const ingestS = (performance.now() - t0) / 1000;
    const samples = events * SAMPLES_PER_EVENT;
    const done = await until(
      async () => {
        const h = await health().catch(() => undefined);
        return h && h.samples_analysed >= samples ? h : undefined;
      },
      'every sample analysed',
      600_000,
      100,
    );
    const ingestRate = (events - n0) / ingestS;
    const analysisRate = done.samples_analysed / (done.busy_ms / 1000);
    const series = await opts.redis.scard(keys.analyzerSeriesIndex);
    const r = {
      series,
      events,
      samples,
      xrange_events_per_s: floor.xrange,
      consumer_events_per_s: floor.consumer,
      ingest_events_per_s: ingestRate,
      ingest_ratio: ingestRate / floor.xrange,
      ingest_samples_per_s: ingestRate * SAMPLES_PER_EVENT,
      analysis_samples_per_s: analysisRate,
      analysis_ratio: analysisRate / (ingestRate * SAMPLES_PER_EVENT),
    };
    opts.log(`analysis: ${JSON.stringify(r)}`);
    return r;
  } finally {
    await analyzer.stop();
    await deleteMatching(opts.redis, `${prefix}:*`);
    rmSync(dir, { recursive: true, force: true });
  }
}
