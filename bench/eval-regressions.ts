// `npm run eval:regressions [-- --series 200] [--seed 42] [--tcpd DIR] [--compare FILE] [--config FILE] [--margin 5]`
// Scores the trend analyzer's regression alerts against known change points. Every series goes through the
// real analyzer process, as timing events on the timings stream (as workers write them); each alert's change
// point (its first task) is the detection, scored with TCPDBench's F1 (a detection within `margin` samples of
// an annotated change, the series start counting in every set) and plainly (without the start).
//
// Series: the generator's labelled CI timing series (regression steps labelled; drift, changes of variance and
// improvements must not alert), and any folder of series in TCPD's JSON format (annotations.json beside it or
// in its parent), where only changes in the regression direction (the level goes up, as run times do) count.
// `--compare FILE` scores other detectors' change points on the same series ({series: {detector: [index]}}),
// filtered to the regression direction the same way.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { loadCommonSettings, parseAnalyzerConfig, repoRoot } from '@fleet/config';
import { encodeTimingEvent, type TimingEvent } from '@fleet/contracts';
import { deleteMatching, FleetKeys } from '@fleet/redis';
import { changePoints, median } from '@fleet/stats';
import { freePort, run, until } from './bench-support.js';
import { fMeasure, type Score } from './regression-score.js';
import { generateSeries } from './regression-series.js';

const { values: o } = parseArgs({
  options: {
    series: { type: 'string', default: '200' },
    seed: { type: 'string', default: '42' },
    tcpd: { type: 'string' },
    compare: { type: 'string' },
    config: { type: 'string' },
    margin: { type: 'string', default: '5' },
  },
});
const MARGIN = Number(o.margin);
const STEP_MS = 1000;
const say = (msg: string) => process.stdout.write(`${msg}\n`);

interface EvalSeries {
  set: 'generator' | 'tcpd';
  name: string;
  /** null where a value is missing (no event is written for it). */
  values: Array<number | null>;
  /** Each annotator's change points in the regression direction. */
  annotators: number[][];
  kind: string;
}

/** Keeps the change points after which the level goes up: the median of the samples up to the next change (at most 30) against those since the previous one. */
function upward(values: ReadonlyArray<number | null>, cps: readonly number[]): number[] {
  const sorted = [...new Set(cps)].filter((c) => c > 0 && c < values.length).sort((a, b) => a - b);
  const present = (from: number, to: number) => values.slice(Math.max(0, from), Math.max(0, to)).filter((v): v is number => v !== null);
  return sorted.filter((c, i) => {
    const before = present(Math.max(sorted[i - 1] ?? 0, c - 30), c);
    const after = present(c, Math.min(sorted[i + 1] ?? values.length, c + 30));
    return before.length > 0 && after.length > 0 && median(after) > median(before);
  });
}

function tcpdSeries(dir: string): EvalSeries[] {
  const annotationsFile = [join(dir, 'annotations.json'), join(dirname(dir), 'annotations.json')].find((f) => existsSync(f));
  if (!annotationsFile) throw new Error(`no annotations.json in ${dir} or its parent`);
  const annotations = JSON.parse(readFileSync(annotationsFile, 'utf8')) as Record<string, Record<string, number[]>>;
  const files: string[] = [];
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (f.endsWith('.json') && f !== 'annotations.json') files.push(p);
    }
  };
  walk(dir);
  const out: EvalSeries[] = [];
  for (const file of files.sort()) {
    const d = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; n_dim?: number; series?: Array<{ raw: Array<number | null> }> };
    if (!d.name || !d.series || !annotations[d.name]) continue;
    if (d.n_dim !== 1) {
      say(`  ${d.name}: skipped (${d.n_dim} dimensions; the analyzer's series are one-dimensional)`);
      continue;
    }
    const raw = (d.series[0]?.raw ?? []).map((v) => (typeof v === 'number' && Number.isFinite(v) ? v : null));
    // Onto a run-time-like scale (100 to 200 ms), since the thresholds are ratios to a positive baseline.
    const present = raw.filter((v): v is number => v !== null);
    const lo = Math.min(...present);
    const span = Math.max(...present) - lo || 1;
    const values = raw.map((v) => (v === null ? null : 100 + (100 * (v - lo)) / span));
    out.push({ set: 'tcpd', name: d.name, values, annotators: Object.values(annotations[d.name]).map((a) => upward(values, a)), kind: 'tcpd' });
  }
  return out;
}

function analyzerConfig(longest: number): Record<string, unknown> {
  const user = o.config ? (JSON.parse(readFileSync(o.config, 'utf8')) as Record<string, unknown>) : {};
  return {
    ...user,
    polling_interval: 0.5,
    history_window: Math.max(200, longest + 10, Number(user.history_window ?? 0)),
    metrics_grouping: ['model_name'],
    metrics_to_track: [],
    max_series: 100_000,
  };
}

interface Detection {
  /** The change point's index (its first task). */
  index: number;
  /** The index of the sample that raised the alert. */
  raisedAt: number;
}

/** Feeds every series through a real analyzer and collects each one's raised alerts. */
async function throughAnalyzer(all: EvalSeries[]): Promise<Map<string, Detection[]>> {
  const url = loadCommonSettings(process.env).redisUrl;
  const prefix = `eval-${process.pid}-${Date.now().toString(36)}`;
  const keys = new FleetKeys(prefix);
  const redis = new Redis(url, { maxRetriesPerRequest: null });
  const configDir = mkdtempSync(join(tmpdir(), 'fleet-eval-'));
  const longest = Math.max(...all.map((s) => s.values.length));
  writeFileSync(join(configDir, 'performance_analyzer_config.json'), JSON.stringify(analyzerConfig(longest)));
  const port = await freePort();
  const analyzer = run([join(repoRoot(), 'dist', 'apps', 'trend-analyzer', 'src', 'main.js')], {
    REDIS_URL: url,
    FLEET_PREFIX: prefix,
    CONFIG_DIR: configDir,
    TREND_ANALYZER_PORT: String(port),
    TIMINGS_MAXLEN: String(10_000_000),
    LOG_LEVEL: 'warn',
  });
  const api = async (path: string) => (await fetch(`http://127.0.0.1:${port}${path}`)).json() as Promise<Record<string, unknown>>;
  try {
    await until(async () => (await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined))?.ok, 'the analyzer', 60_000, 100);
    // One round per sample index across every series, as a fleet runs many groups at once.
    const t0 = Date.now() - (longest + 60) * STEP_MS;
    let written = 0;
    for (let i = 0; i < longest; i++) {
      const pipeline = redis.pipeline();
      for (const s of all) {
        const v = s.values[i];
        if (v === undefined || v === null) continue;
        const finished = t0 + i * STEP_MS;
        const e: TimingEvent = {
          task_id: `eval.${s.name}.${i}`,
          task_type: 'synthetic',
          pool: 'eval',
          worker_id: 'eval',
          attempt: 1,
          outcome: 'completed',
          final: true,
          queued_at: finished - v,
          started_at: finished - v,
          finished_at: finished,
          wait_ms: 0,
          run_ms: v,
          metrics: {},
          labels: { model_name: s.name, commit: `c${i}` },
        };
        pipeline.xadd(keys.timings, '*', ...encodeTimingEvent(e));
        written++;
      }
      await pipeline.exec();
    }
    say(`  ${written} timing events written for ${all.length} series; waiting for the analyzer`);
    await until(
      async () => ((await api('/metrics/summary')).events as { processed: number }).processed >= written,
      'the analyzer to read every event',
      600_000,
      250,
    );
    const caughtUp = Date.now();
    await until(
      // An analysis that began after the last event was read (before the first one, generated_at is the current time).
      async () => {
        const s = await api('/metrics/summary');
        return (s.series as unknown[]).length > 0 && Date.parse(s.generated_at as string) > caughtUp;
      },
      'an analysis of every sample',
      600_000,
      250,
    );
    const found = new Map<string, Detection[]>();
    for (const [, fields] of await redis.xrange(keys.alerts, '-', '+')) {
      const a: Record<string, unknown> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) {
        const raw = fields[i + 1];
        try {
          a[fields[i]] = JSON.parse(raw);
        } catch {
          a[fields[i]] = raw;
        }
      }
      const cp = a.change_point as { task_id?: string } | undefined;
      if (a.event !== 'raised' || a.metric !== 'run_time_ms' || !cp?.task_id) continue;
      const name = String(a.group).replace(/^model_name=/, '');
      const index = Number(cp.task_id.split('.').at(-1));
      const raisedAt = Math.round(((a.at as number) - t0) / STEP_MS);
      found.set(name, [...(found.get(name) ?? []), { index, raisedAt }]);
    }
    return found;
  } finally {
    await analyzer.stop();
    await deleteMatching(redis, `${prefix}:*`);
    await redis.quit();
    rmSync(configDir, { recursive: true, force: true });
  }
}

interface Row {
  detector: string;
  tcpd: Score;
  plain: Score;
  /** Series with no regression annotated that raised an alert, of such series. */
  falseSeries: [number, number];
  delays: number[];
}

function score(series: EvalSeries[], detector: string, detect: (s: EvalSeries) => Detection[] | null): Row | null {
  let tp = { precision: 0, recall: 0, f1: 0 };
  let pl = { ...tp };
  let n = 0;
  const falseSeries: [number, number] = [0, 0];
  const delays: number[] = [];
  for (const s of series) {
    const found = detect(s);
    if (found === null) continue;
    n++;
    const xs = found.map((d) => d.index);
    const a = fMeasure(s.annotators, xs, MARGIN);
    const b = fMeasure(s.annotators, xs, MARGIN, false);
    tp = { precision: tp.precision + a.precision, recall: tp.recall + a.recall, f1: tp.f1 + a.f1 };
    pl = { precision: pl.precision + b.precision, recall: pl.recall + b.recall, f1: pl.f1 + b.f1 };
    const all = s.annotators.flat();
    if (all.length === 0) {
      falseSeries[1]++;
      if (found.length) falseSeries[0]++;
    }
    for (const d of found) {
      const truth = all.filter((t) => Math.abs(t - d.index) <= MARGIN).sort((x, y) => Math.abs(x - d.index) - Math.abs(y - d.index))[0];
      if (truth !== undefined && d.raisedAt >= 0) delays.push(d.raisedAt - truth);
    }
  }
  if (n === 0) return null;
  const avg = (x: Score) => ({ precision: x.precision / n, recall: x.recall / n, f1: x.f1 / n });
  return { detector, tcpd: avg(tp), plain: avg(pl), falseSeries, delays };
}

function table(title: string, rows: Array<Row | null>): void {
  say(`\n${title}`);
  say('| detector | F1 (TCPD, M=5) | precision | recall | F1 (plain) | false-alert series | median delay |');
  say('|---|---|---|---|---|---|---|');
  for (const r of rows) {
    if (!r) continue;
    const f = (x: number) => x.toFixed(3);
    const fa = r.falseSeries[1] ? `${r.falseSeries[0]}/${r.falseSeries[1]} (${((100 * r.falseSeries[0]) / r.falseSeries[1]).toFixed(1)}%)` : '-';
    const delay = r.delays.length ? `${median(r.delays)} samples` : '-';
    say(`| ${r.detector} | ${f(r.tcpd.f1)} | ${f(r.tcpd.precision)} | ${f(r.tcpd.recall)} | ${f(r.plain.f1)} | ${fa} | ${delay} |`);
  }
}

/** Offline binary segmentation over the whole series (libs/stats changePoints), regression direction only: a reference, not online. */
function offline(s: EvalSeries): Detection[] {
  const present = s.values.map((v, i) => ({ v, i })).filter((p): p is { v: number; i: number } => p.v !== null);
  const cps = changePoints(present.map((p) => p.v)).map((k) => (present[k] as { i: number }).i);
  return upward(s.values, cps).map((index) => ({ index, raisedAt: -1 }));
}

async function main(): Promise<number> {
  const started = Date.now();
  const generated: EvalSeries[] = generateSeries(Number(o.series), Number(o.seed)).map((s) => ({
    set: 'generator',
    name: s.name,
    values: s.values,
    annotators: [s.regressions],
    kind: s.kind,
  }));
  const tcpd = o.tcpd ? tcpdSeries(o.tcpd) : [];
  const compare = o.compare ? (JSON.parse(readFileSync(o.compare, 'utf8')) as Record<string, Record<string, number[]>>) : {};
  say(
    `eval:regressions: ${generated.length} generated series (seed ${o.seed})${tcpd.length ? ` and ${tcpd.length} TCPD series from ${o.tcpd}` : ''}, margin ${MARGIN}`,
  );
  const found = await throughAnalyzer([...generated, ...tcpd]);
  const analyzer = (s: EvalSeries) => found.get(s.name) ?? [];

  table('Generated CI timing series (regression steps labelled)', [
    score(generated, 'trend analyzer (online)', analyzer),
    score(generated, 'never alerts', () => []),
    score(generated, 'offline binary segmentation (reference)', offline),
  ]);
  // Where the analyzer is right and wrong on the generator, by noise and by what changed.
  say('\nBy kind (generator): series, regressions found/labelled, series with a false alert');
  const kinds = new Map<string, { series: number; found: number; labelled: number; falseAlerts: number }>();
  for (const s of generated) {
    const det = analyzer(s).map((d) => d.index);
    const truth = s.annotators[0] ?? [];
    const hits = truth.filter((t) => det.some((d) => Math.abs(d - t) <= MARGIN)).length;
    const extra = det.some((d) => !truth.some((t) => Math.abs(d - t) <= MARGIN));
    for (const k of new Set(s.kind.split(', ').map((x) => x.split(' ')[0]))) {
      const e = kinds.get(k) ?? { series: 0, found: 0, labelled: 0, falseAlerts: 0 };
      kinds.set(k, {
        series: e.series + 1,
        found: e.found + hits,
        labelled: e.labelled + truth.length,
        falseAlerts: e.falseAlerts + (extra ? 1 : 0),
      });
    }
  }
  for (const [k, e] of [...kinds].sort())
    say(`  ${k.padEnd(12)} ${String(e.series).padStart(4)} series  ${e.found}/${e.labelled} found  ${e.falseAlerts} with a false alert`);
  const steps = generated.flatMap((s) =>
    [...s.kind.matchAll(/regression \+(\d+)%/g)].map((m, j) => ({ size: Number(m[1]), at: s.annotators[0]?.[j], det: analyzer(s) })),
  );
  // How well the change point is located: detections matched to a labelled step, exact and mean error.
  const errors = generated.flatMap((s) =>
    analyzer(s).flatMap((d) => {
      const near = (s.annotators[0] ?? []).filter((t) => Math.abs(t - d.index) <= MARGIN).map((t) => Math.abs(t - d.index));
      return near.length ? [Math.min(...near)] : [];
    }),
  );
  if (errors.length)
    say(
      `  located: ${errors.filter((e) => e === 0).length}/${errors.length} at the labelled step's first sample (${((100 * errors.filter((e) => e === 0).length) / errors.length).toFixed(0)}%), mean error ${(errors.reduce((a, b) => a + b, 0) / errors.length).toFixed(2)} samples`,
    );
  for (const [lo, hi] of [
    [10, 20],
    [20, 35],
    [35, 51],
  ] as const) {
    const inBand = steps.filter((x) => x.size >= lo && x.size < hi);
    const hit = inBand.filter((x) => x.det.some((d) => Math.abs(d.index - x.at) <= MARGIN)).length;
    say(`  steps +${lo}–${Math.min(hi, 50)}%: ${hit}/${inBand.length} found`);
  }

  if (tcpd.length) {
    const others = [...new Set(Object.values(compare).flatMap((m) => Object.keys(m)))].sort();
    const rows = (series: EvalSeries[]) => [
      score(series, 'trend analyzer (online)', analyzer),
      score(series, 'never alerts', () => []),
      score(series, 'offline binary segmentation (reference)', offline),
      ...others.map((m) =>
        score(series, `${m} (--compare)`, (s) => {
          // As TCPDBench scores them: points at the series' first or last sample dropped.
          const cps = compare[s.name]?.[m]?.filter((c) => c >= 1 && c < s.values.length - 1);
          return cps ? upward(s.values, cps).map((index) => ({ index, raisedAt: -1 })) : null;
        }),
      ),
    ];
    table(`TCPD series (annotated changes in the regression direction): all ${tcpd.length}`, rows(tcpd));
    // An online detector alerts only after a full baseline and a few samples after the change (by design: no
    // alert before a full baseline); offline ones see the whole series at once, however short.
    const { baselineWindow, recentWindow } = parseAnalyzerConfig(analyzerConfig(0)).value.regression;
    const long = tcpd.filter((s) => s.values.length >= baselineWindow + recentWindow);
    table(`The ${long.length} TCPD series of at least baseline_window + recent_window (${baselineWindow + recentWindow}) samples`, rows(long));
    say("\nPer TCPD series: annotated (regression direction, per annotator) and the analyzer's change points");
    for (const s of tcpd)
      say(
        `  ${s.name.padEnd(20)} n=${String(s.values.length).padStart(4)}  annotated ${JSON.stringify(s.annotators)}  alerts ${JSON.stringify(analyzer(s).map((d) => d.index))}`,
      );
  }
  say(`\n(${((Date.now() - started) / 1000).toFixed(0)} s)`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`eval:regressions: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
