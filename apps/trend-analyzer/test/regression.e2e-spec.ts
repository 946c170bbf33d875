import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpuTemplate, distEntry, isolatedSuite, waitFor, watchCommands } from '@fleet/testing';
import { type Analyzer, fastAnalyzerConfig, startAnalyzer } from './analyzer-harness.js';

describe('the trend analyzer on real timings', () => {
  const suite = isolatedSuite(
    'trend',
    {
      'worker_templates.json': { cpu: cpuTemplate({ concurrency: 4 }) },
      // Alerts on the latency each task reports, not on its measured run time: a machine whose load shifts between
      // the two phases changes every measured run time (under stress-ng even half-second sleeps moved by over 20%,
      // and the analyzer rightly flagged the "unchanged" group). Reported values change only where the test steps
      // them. Alerts on measured run times are the whole-fleet test's (a doubling against a 1.5 ratio).
      'performance_analyzer_config.json': fastAnalyzerConfig({
        metrics_to_track: ['latency_ms'],
        // Run-time alerts are built in (1.08); a ratio of 100 puts them out of this suite's reach.
        reporting: {
          generate_charts: true,
          alert_thresholds: { latency_ms: { warning: 1.2, critical: 2 }, run_time_ms: { warning: 100, critical: 100 } },
        },
      }),
    },
    // A Redis of its own: a test watches what the analyzer reads (MONITOR, which the ACL run's user may not run).
    { privateRedis: {} },
  );
  let analyzer: Analyzer;
  const queue = () => suite.queue('cpu');

  beforeAll(async () => {
    analyzer = await startAnalyzer({ prefix: suite.prefix, configDir: suite.config.path, redisUrl: suite.redisUrl });
    suite.onCleanup(() => analyzer.stop());
    for (let i = 0; i < 2; i++) suite.worker({ pool: 'cpu' });
  });

  /** `n` tasks of 20 ms reporting a latency of about `latencyMs` (a fixed spread of ±4%, the same every run). */
  const run = async (group: string, n: number, latencyMs: number, commit = 'base000') =>
    queue().add(
      ...Array.from({ length: n }, (_, i) => ({
        type: 'synthetic',
        name: `${group} ${i}`,
        labels: { model_name: group, commit },
        config: { duration_ms: 20, metrics: { latency_ms: latencyMs * (0.96 + ((i * 7) % 9) * 0.01) } },
      })),
    );
  const allDone = (total: number) =>
    waitFor(async () => (await queue().queue.getJobCounts('completed')).completed === total, {
      what: `${total} tasks completed`,
      timeoutMs: 60_000,
      intervalMs: 100,
    });
  const caughtUp = () =>
    waitFor(
      async () => {
        const s = await analyzer.summary();
        return s.events.processed > 0 && s.events.processed === (await suite.redis.xlen(suite.keys.timings)) ? s : undefined;
      },
      { what: 'the analyzer to process every event', timeoutMs: 20_000 },
    );

  it('raises exactly one regression alert for the group whose latency stepped up by 30%, and none for the unchanged group', async () => {
    await Promise.all([run('slow', 60, 100), run('steady', 60, 100)]);
    await allDone(120);
    const [stepped] = await Promise.all([run('slow', 40, 130, 'abc123'), run('steady', 40, 100)]);
    await allDone(200);
    const steppedIds = new Set(stepped);
    await caughtUp();
    const alerts = await waitFor(
      async () => {
        const body = (await analyzer.http.get('/alerts').expect(200)).body as {
          active: Array<{ series: string }>;
          recent: Array<{ event: string; series: string; metric: string; group: string; severity: string; ratio: number }>;
        };
        return body.recent.some((a) => a.event === 'raised') ? body : undefined;
      },
      { what: 'a regression alert', timeoutMs: 20_000 },
    );
    // Give every sample its analysis before counting: the last analysis must have seen all of them.
    await waitFor(
      async () => (await analyzer.http.get('/report').expect(200)).body.series.every((s: { summary: { n: number } }) => s.summary.n > 0),
      { what: 'a full analysis' },
    );
    const raised = ((await analyzer.http.get('/alerts').expect(200)).body.recent as typeof alerts.recent).filter((a) => a.event === 'raised');
    expect(raised.map((a) => [a.metric, a.group])).toEqual([['latency_ms', 'model_name=slow']]);
    expect(raised[0]?.severity).toBe('warning');
    expect(raised[0]?.ratio).toBeGreaterThan(1.2);
    // Where the change began: the step's first task, its commit, the samples either side, the size with an interval.
    const cp = (raised[0] as unknown as { change_point: Record<string, unknown> }).change_point;
    expect(cp.labels).toEqual({ commit: 'abc123' });
    // One of the stepped tasks (on an idle machine the first to finish; under load neighbouring samples blur
    // the estimate by a few, and events reach the stream out of finish order).
    expect([...steppedIds]).toContain(cp.task_id);
    expect(cp.samples_before).toBeGreaterThanOrEqual(30);
    expect(cp.samples_after).toBeGreaterThanOrEqual(5);
    expect(cp.ratio_low as number).toBeLessThanOrEqual(cp.ratio as number);
    expect(cp.ratio_high as number).toBeGreaterThanOrEqual(cp.ratio as number);
    expect(cp.ratio as number).toBeGreaterThan(1.2);
    expect(alerts.active.map((a) => a.series)).toEqual(['latency_ms|model_name=slow']);

    const trends = (await analyzer.http.get('/trends').expect(200)).body.trends as Array<{ metric: string; group: string; classification: string }>;
    const names = trends.map((t) => `${t.metric}|${t.group}`);
    for (const metric of ['run_time_ms', 'queue_wait_ms', 'latency_ms']) {
      for (const group of ['model_name=slow', 'model_name=steady']) expect(names).toContain(`${metric}|${group}`);
    }
    expect(trends.find((t) => t.metric === 'latency_ms' && t.group === 'model_name=slow')?.classification).toBe('degrading');
  });

  it('writes an HTML report naming every tracked metric with a chart per metric and group', async () => {
    const out = join(suite.config.path, 'report.html');
    const r = spawnSync(process.execPath, [distEntry('cli'), 'report', '--out', out], {
      env: { ...process.env, TREND_ANALYZER_URL: analyzer.url },
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    const html = readFileSync(out, 'utf8');
    const report = (await analyzer.http.get('/report').expect(200)).body as { metrics: string[]; series: Array<{ metric: string; group: string }> };
    expect(report.metrics).toEqual(expect.arrayContaining(['latency_ms', 'queue_wait_ms', 'run_time_ms']));
    for (const m of report.metrics) expect(html).toContain(`<h2>${m}</h2>`);
    const charts = [...html.matchAll(/<svg class="chart" data-metric="([^"]+)" data-group="([^"]+)"/g)].map((m) => `${m[1]}|${m[2]}`);
    expect(charts.sort()).toEqual(report.series.map((s) => `${s.metric}|${s.group}`).sort());
    // The slow group's chart marks where its change began: the alert's change point.
    const active = (await analyzer.http.get('/alerts').expect(200)).body.active as Array<{ group: string; change_point: { at: number } }>;
    const slow = active.find((a) => a.group === 'model_name=slow');
    expect(html).toContain(`class="change-point" data-at="${slow?.change_point.at}"`);
    expect(html).toMatch(/regressed to 1\d\d% of its baseline/);
  });

  it('reads again and analyses only the series that got new samples', async () => {
    await caughtUp();
    const health = async () =>
      ((await analyzer.http.get('/health').expect(200)).body as { analysis: { samples_analysed: number; passes: number } }).analysis;
    const before = await health();
    // How often each series list is read from here on, and how many rows each read asked for.
    const reads = new Map<string, number>();
    const starts: number[] = [];
    const watch = await watchCommands(suite.redisUrl, ({ name, args }) => {
      if (name !== 'lrange' || !args[0]?.startsWith(suite.keys.analyzerSeriesPrefix)) return;
      const series = args[0].slice(suite.keys.analyzerSeriesPrefix.length);
      reads.set(series, (reads.get(series) ?? 0) + 1);
      starts.push(Number(args[1]));
    });
    suite.onCleanup(() => watch.close());
    await run('slow', 5, 130, 'abc123');
    await allDone(205);
    await caughtUp();
    // Five tasks: three samples each (run time, queue wait, latency) for the slow group alone; then three passes more.
    await waitFor(async () => (await health()).samples_analysed >= before.samples_analysed + 15, { what: 'the new samples analysed' });
    const passes = (await health()).passes;
    await waitFor(async () => (await health()).passes >= passes + 3, { what: 'three more passes' });
    for (const metric of ['latency_ms', 'queue_wait_ms', 'run_time_ms']) expect(reads.get(`${metric}|model_name=slow`)).toBeGreaterThanOrEqual(1);
    // Each read is of the rows appended since the last (LRANGE -k -1, k at most the five new tasks'), not the
    // whole list of a hundred and more.
    expect(starts.length).toBeGreaterThan(0);
    for (const start of starts) expect(start).toBeGreaterThanOrEqual(-5);
    for (const start of starts) expect(start).toBeLessThan(0);
    // The steady group got nothing new: each of its series is read at most once (what the last pass before the
    // watch had not reached yet), not on every pass.
    const steady = [...reads].filter(([series]) => series.includes('model_name=steady'));
    for (const [series, n] of steady) expect([series, n]).toEqual([series, 1]);
  });
});
