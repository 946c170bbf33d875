import { Inject, Injectable, Logger } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { directionOf } from '@fleet/config';
import { type AnalyzerSettings, ANALYZER_SETTINGS } from './analyzer-settings.js';
import {
  type ActiveStep,
  type Anomaly,
  classifyTrend,
  detectAnomalies,
  detectStep,
  type DetectorOptions,
  type Direction,
  SlidingSorted,
  type StepState,
  summarize,
  type Summary,
  type Trend,
} from '@fleet/stats';
import { AnalyzerRepository, type SeriesPoint } from './analyzer.repository.js';
import { type Sample, seriesKey, splitSeries } from './event-samples.js';
import { TickRunner } from '@fleet/app';

/**
 * One series as last read. Its summary and trend are computed when first asked for (an endpoint, the report),
 * once per reading: the analysis pass itself only checks new samples, so its cost follows what arrived.
 */
export class SeriesAnalysis {
  alert: Record<string, unknown> | null = null;
  private summaryOf?: Summary;
  private trendOf?: Trend;

  constructor(
    readonly series: string,
    readonly metric: string,
    readonly group: string,
    readonly direction: Direction,
    readonly points: SeriesPoint[],
    private readonly trendOptions: Parameters<typeof classifyTrend>[1],
  ) {}

  get summary(): Summary {
    return (this.summaryOf ??= summarize(this.points.map((p) => p.value)));
  }

  get trend(): Trend {
    return (this.trendOf ??= classifyTrend(
      this.points.map((p) => p.value),
      this.trendOptions,
    ));
  }
}

export interface AnomalyRecord extends Anomaly {
  series: string;
  metric: string;
  group: string;
  at: number;
}

export interface Snapshot {
  at: number;
  counters: Record<string, number>;
  series: SeriesAnalysis[];
}

const ANALYSIS = 'analysis';

function inTimeOrder(points: readonly SeriesPoint[]): boolean {
  for (let i = 1; i < points.length; i++) if (points[i].at < points[i - 1].at) return false;
  return true;
}
const MAX_ANOMALIES = 1000;

/**
 * A series as the last pass left it: its version, its analysis, its samples in the order they were appended (when
 * that is time order, the analysis's points are this very array), and the points' values. A pass builds the next
 * from it with work for the new samples only (and a copy of the kept ones), not for the window.
 */
interface AnalysedSeries {
  version: number;
  analysis: SeriesAnalysis;
  appended: SeriesPoint[];
  values: number[];
}

/**
 * Every `polling_interval`: records per-pool throughput and failure rate from the counters, then reads again
 * only the series that got samples since the last pass (their version moved) and checks each new sample for
 * anomalies and for a regression (alerts raised, escalated and cleared once each, shared by every analyzer
 * through Redis). Summaries and trends are computed when read (SeriesAnalysis).
 */
@Injectable()
export class AnalysisService {
  private readonly logger = new Logger(AnalysisService.name);
  private readonly lastSeen = new Map<string, number>();
  /** Per series: the active regression and a change point awaiting confirmation, by sample time (lists are trimmed). */
  private readonly detectors = new Map<string, { active?: ActiveStep & { changeAt: number }; pending?: { at: number; streak: number } }>();
  private lastCounters: { at: number; values: Record<string, number> } | undefined;
  private readonly passes = new TickRunner(
    () => this.run(),
    (err) => this.logger.warn(`analysis failed: ${err.message}`),
    { rerun: false },
  );
  /**
   * Per series: its analysis as of the version (samples ever appended) it was read at, and its samples in the
   * order they were appended (as its list in Redis holds them: the next pass reads only what came after).
   */
  private readonly analysed = new Map<string, AnalysedSeries>();
  /**
   * New samples analysed, the passes made and the time they took, since start (the analysis's throughput). A pass
   * adds its samples and its time together when it ends, so a reader never sees one without the other.
   */
  samplesAnalysed = 0;
  /** Of those, the ones that arrived after a later-finishing sample of their series had been checked. */
  lateSamples = 0;
  /** The anomaly check's sorted window, moved along each series as its new samples are checked one by one. */
  private readonly anomalyWindow = new SlidingSorted();
  /** The step detector's options for each direction (built once, not per sample). */
  private readonly stepOptions = new Map<Direction, DetectorOptions>();
  passesMade = 0;
  busyMs = 0;
  readonly anomalies: AnomalyRecord[] = [];
  snapshot: Snapshot = { at: 0, counters: {}, series: [] };

  constructor(
    @Inject(ANALYZER_SETTINGS) private readonly settings: AnalyzerSettings,
    private readonly repo: AnalyzerRepository,
    private readonly scheduler: SchedulerRegistry,
  ) {}

  /** Loads active alerts and marks existing samples as seen, so a restart neither repeats nor forgets alerts. */
  async resume(): Promise<void> {
    this.detectors.clear();
    this.lastSeen.clear();
    this.analysed.clear();
    this.lastCounters = undefined;
    for (const [series, a] of await this.repo.activeAlerts()) {
      const cp = a.change_point as { at?: number } | undefined;
      this.detectors.set(series, {
        active: {
          severity: a.severity as 'warning' | 'critical',
          baselineMedian: Number(a.baseline_median),
          ratio: Number(a.ratio),
          p: Number(a.p),
          changeIndex: 0,
          changeAt: Number(cp?.at ?? a.at),
        },
      });
    }
    for (const [series, points] of await this.repo.allSeries()) this.lastSeen.set(series, points.at(-1)?.at ?? 0);
  }

  schedule(): void {
    this.scheduler.addInterval(
      ANALYSIS,
      setInterval(() => void this.analyze(), this.settings.config.pollingIntervalMs),
    );
  }

  analyze(): Promise<void> {
    return this.passes.run();
  }

  private async recordRates(counters: Record<string, number>, now: number): Promise<void> {
    const prev = this.lastCounters;
    this.lastCounters = { at: now, values: counters };
    if (!prev || now <= prev.at) return;
    const interval = this.settings.config.pollingIntervalMs;
    if (!(await this.repo.claimPeriod(Math.floor(now / interval), 3 * interval))) return;
    const pools = new Set(Object.keys(counters).flatMap((k) => (/^(completed|failed):/.test(k) ? [k.slice(k.indexOf(':') + 1)] : [])));
    const samples: Sample[] = [];
    for (const pool of pools) {
      const done = (counters[`completed:${pool}`] ?? 0) - (prev.values[`completed:${pool}`] ?? 0);
      const failed = (counters[`failed:${pool}`] ?? 0) - (prev.values[`failed:${pool}`] ?? 0);
      if (done + failed === 0) continue;
      samples.push({ series: seriesKey('throughput_per_s', `pool=${pool}`), at: now, value: done / ((now - prev.at) / 1000) });
      samples.push({ series: seriesKey('failure_rate', `pool=${pool}`), at: now, value: failed / (done + failed) });
    }
    await this.repo.appendSamples(samples);
  }

  private async run(): Promise<void> {
    const began = performance.now();
    const analysed = { samples: 0, late: 0 };
    try {
      await this.pass(analysed);
      this.passesMade++;
    } finally {
      // (A pass that failed part way counts its time, and the samples it analysed before: they are not read again.)
      this.samplesAnalysed += analysed.samples;
      this.lateSamples += analysed.late;
      this.busyMs += performance.now() - began;
    }
  }

  /** One pass over the series that moved, counting the new samples it analyses (and of them the late ones) in `analysed`. */
  private async pass(analysed: { samples: number; late: number }): Promise<void> {
    const c = this.settings.config;
    const now = Date.now();
    const counters = await this.repo.counters();
    await this.recordRates(counters, now);
    // Only series whose count of appended samples moved are read and analysed again; the others keep the
    // analysis they had (summary, trend and points), so a pass costs what arrived, not what is kept.
    const versions = await this.repo.seriesVersions();
    for (const series of this.analysed.keys()) if (!versions.has(series)) this.analysed.delete(series);
    const moved = new Map(
      [...versions]
        .filter(([series, v]) => v < 0 || this.analysed.get(series)?.version !== v)
        .map(([series]) => [series, this.analysed.get(series)?.version ?? -1]),
    );
    const window = c.historyWindow;
    for (const [series, read] of await this.repo.readSince(moved)) {
      const { metric, group } = splitSeries(series);
      // The list as Redis holds it (its last `history_window` appended), then in time order: workers finish
      // tasks out of order, and analysing in time order means a sample is never evaluated twice.
      const last = this.analysed.get(series);
      const prev = read.whole ? undefined : last;
      const old = prev?.appended ?? [];
      const drop = Math.max(0, old.length + read.appended.length - window);
      const fresh = drop > old.length ? read.appended.slice(drop - old.length) : read.appended;
      const kept = drop >= old.length ? [] : old.slice(drop);
      const appended = kept.length === 0 ? fresh : kept.concat(fresh);
      // In time order when the kept samples were (as the last pass found), the new ones are, and they follow on;
      // only the new ones are checked then. (Both arrays are only read from here on: in time order, as samples
      // mostly come, they are one.)
      const prevOrdered = prev !== undefined && prev.analysis.points === prev.appended;
      const follows = kept.length === 0 || fresh.length === 0 || (kept.at(-1) as SeriesPoint).at <= fresh[0].at;
      const ordered = kept.length === 0 || prevOrdered ? follows && inTimeOrder(fresh) : inTimeOrder(appended);
      const points = ordered ? appended : [...appended].sort((a, b) => a.at - b.at);
      const values =
        ordered && prevOrdered && kept.length > 0 ? prev.values.slice(drop).concat(fresh.map((p) => p.value)) : points.map((p) => p.value);
      const direction = directionOf(c, metric);
      const seen = this.lastSeen.get(series) ?? -Infinity;
      const known = last?.version;
      if (known !== undefined && seen > -Infinity) {
        // Samples that arrived since the last pass but finished at or before the newest one it checked (a worker's
        // event reached the stream after a later-finishing one's, and a pass ran between): each is checked for
        // anomalies where it stands in time. The step detector reads the window's end: it has them in every
        // window from the next sample on. (Not known after a restart: the first pass takes what it finds as seen.)
        for (let k = Math.max(0, read.appended.length - (read.version - known)); k < read.appended.length; k++) {
          const p = read.appended[k];
          if (p.at > seen) continue;
          const i = points.indexOf(p);
          if (i < 0) continue;
          this.checkAnomalies(series, metric, group, points, values, i);
          analysed.samples++;
          analysed.late++;
        }
      }
      // The points are in time order: those after the last seen are the last ones.
      let firstNew = points.length;
      while (firstNew > 0 && points[firstNew - 1].at > seen) firstNew--;
      if (firstNew < points.length) {
        this.lastSeen.set(series, (points.at(-1) as { at: number }).at);
        for (let i = firstNew; i < points.length; i++) {
          this.checkAnomalies(series, metric, group, points, values, i);
          // (Awaited only when it has an alert to write: most samples change nothing in Redis.)
          const alerting = this.checkRegression(series, metric, group, points, values, i, direction);
          if (alerting) await alerting;
        }
        analysed.samples += points.length - firstNew;
      }
      this.analysed.set(series, {
        version: read.version,
        analysis: new SeriesAnalysis(series, metric, group, direction, points, { ...c.trend, improvementDirection: direction }),
        appended,
        values,
      });
    }
    const active = await this.repo.activeAlerts();
    const out = [...versions.keys()].flatMap((series) => {
      const a = this.analysed.get(series)?.analysis;
      if (a) a.alert = active.get(series) ?? null;
      return a ? [a] : [];
    });
    this.snapshot = { at: now, counters, series: out };
  }

  /** Checks sample `i` of the series against the samples before it in time, and keeps what it finds. */
  private checkAnomalies(series: string, metric: string, group: string, points: readonly SeriesPoint[], values: readonly number[], i: number): void {
    for (const a of detectAnomalies(values, i, this.settings.config.anomaly, this.anomalyWindow)) {
      this.anomalies.push({ ...a, series, metric, group, at: points[i].at });
      if (this.anomalies.length > MAX_ANOMALIES) this.anomalies.shift();
    }
  }

  /**
   * Feeds sample `i` of the series to its step detector (which decides when); an alert carries the change point
   * (where): the first sample after the change, its task and commit, the samples on each side, the size with a
   * 95% interval. Returns the write of the alert when there is one to write.
   */
  private checkRegression(
    series: string,
    metric: string,
    group: string,
    points: readonly SeriesPoint[],
    allValues: readonly number[],
    i: number,
    direction: Direction,
  ): Promise<void> | undefined {
    const thresholds = this.settings.config.alertThresholds[metric];
    if (!thresholds) return undefined;
    const o = this.settings.config.regression;
    // The detector looks at the last baseline + recent samples only: allValues[lo, i] (indexes from `lo`), read in
    // place. A change point before them reads as the window's first sample, where it stands for the same (the
    // window lies wholly after it).
    const lo = Math.max(0, i + 1 - (o.baselineWindow + o.recentWindow));
    const indexOf = (at: number) => {
      for (let k = lo; k < points.length; k++) if (points[k].at >= at) return k - lo;
      return 0;
    };
    const d = this.detectors.get(series) ?? {};
    const state: StepState = {
      ...(d.active && { active: { ...d.active, changeIndex: indexOf(d.active.changeAt) } }),
      ...(d.pending && { pending: { index: indexOf(d.pending.at), streak: d.pending.streak } }),
    };
    let options = this.stepOptions.get(direction);
    if (!options) this.stepOptions.set(direction, (options = { ...o, improvementDirection: direction }));
    const r = detectStep(allValues, state, thresholds, options, lo, i + 1);
    // Back to sample times; a point the detector kept where it was keeps its time (it may lie before the window).
    const atOf = (index: number, was?: { index: number; at: number }) => (was?.index === index ? was.at : points[lo + index].at);
    this.detectors.set(series, {
      ...(r.state.active && {
        active: {
          ...r.state.active,
          changeAt: atOf(r.state.active.changeIndex, d.active && state.active && { index: state.active.changeIndex, at: d.active.changeAt }),
        },
      }),
      ...(r.state.pending && {
        pending: {
          at: atOf(r.state.pending.index, d.pending && state.pending && { index: state.pending.index, at: d.pending.at }),
          streak: r.state.pending.streak,
        },
      }),
    });
    if (!r.event) return undefined;
    const a = r.state.active;
    const cp = r.change;
    const first = cp ? points[lo + cp.index] : undefined;
    const alert = {
      metric,
      group,
      at: points[i].at,
      severity: a?.severity ?? 'cleared',
      ratio: Number((a?.ratio ?? 1).toFixed(4)),
      baseline_median: a?.baselineMedian ?? null,
      recent_median: cp?.recentMedian ?? null,
      p: a?.p ?? null,
      direction,
      thresholds,
      ...(cp &&
        first && {
          change_point: {
            index: lo + cp.index,
            at: first.at,
            task_id: first.task_id ?? null,
            labels: first.labels ?? {},
            samples_before: cp.before,
            samples_after: cp.after,
            ratio: Number(cp.ratio.toFixed(4)),
            ratio_low: Number(cp.ratioLow.toFixed(4)),
            ratio_high: Number(cp.ratioHigh.toFixed(4)),
            baseline_median: cp.baselineMedian,
            recent_median: cp.recentMedian,
            p: cp.p,
          },
        }),
      message: this.describe(r.event, metric, group, a?.severity, a?.ratio, first),
    };
    return this.repo.transitionAlert(r.event, series, alert).then((changed) => {
      if (changed) this.logger.warn(alert.message);
    });
  }

  private describe(
    event: string,
    metric: string,
    group: string,
    severity: string | undefined,
    ratio: number | undefined,
    first?: SeriesPoint,
  ): string {
    if (event === 'cleared') return `${metric} for ${group} has recovered`;
    const where = first
      ? ` from ${first.labels?.commit ? `commit ${first.labels.commit} (task ${first.task_id ?? '?'})` : `task ${first.task_id ?? '?'}`} at ${new Date(first.at).toISOString()}`
      : '';
    return `${severity?.toUpperCase()}: ${metric} for ${group} regressed to ${((ratio ?? 1) * 100).toFixed(0)}% of its baseline${where}${event === 'escalated' ? ' (escalated)' : ''}`;
  }

  stop(): Promise<void> {
    if (this.scheduler.doesExist('interval', ANALYSIS)) this.scheduler.deleteInterval(ANALYSIS);
    return this.passes.stop();
  }
}
