import type { AnalyzerConfig } from '@fleet/config';
import type { TimingEvent } from '@fleet/contracts';

export interface Sample {
  /** `metric|group`, e.g. `run_time_ms|model_name=bert-tiny,pool=cpu`. */
  series: string;
  at: number;
  value: number;
  /** The task the sample came from, and its labels that say where a change began (commit, branch, run). */
  task_id?: string;
  labels?: Record<string, string>;
}

/** Labels a sample keeps, so an alert can name the commit (and branch, run, build) of its first sample after a change. */
export const CHANGE_LABELS = ['commit', 'branch', 'run_id', 'build'] as const;

/** A sample as stored in its series list: `<at> <value>[ <task id> <labels as JSON>]`, both URI-encoded. */
export function sampleRow(s: Sample): string {
  return s.task_id === undefined ? `${s.at} ${s.value}` : `${s.at} ${s.value}${rowSuffix(s.task_id, s.labels)}`;
}

/** The suffix's labels when there are none: `{}` URI-encoded (most samples). */
const NO_LABELS = encodeURIComponent('{}');

/** What follows a row's time and value when the sample names its task (see sampleRow). */
export function rowSuffix(taskId: string, labels: Record<string, string> | undefined): string {
  return ` ${encodeURIComponent(taskId)} ${labels === undefined ? NO_LABELS : encodeURIComponent(JSON.stringify(labels))}`;
}

/** A row read back (see sampleRow). Runs for every row the analysis reads: no split, no decoding where none is needed. */
export function parseSampleRow(row: string): { at: number; value: number; task_id?: string; labels?: Record<string, string> } {
  const a = row.indexOf(' ');
  const b = row.indexOf(' ', a + 1);
  const point: { at: number; value: number; task_id?: string; labels?: Record<string, string> } = {
    at: Number(row.slice(0, a)),
    value: Number(b < 0 ? row.slice(a + 1) : row.slice(a + 1, b)),
  };
  if (b < 0) return point;
  const c = row.indexOf(' ', b + 1);
  const task = c < 0 ? row.slice(b + 1) : row.slice(b + 1, c);
  point.task_id = task.includes('%') ? decodeURIComponent(task) : task;
  if (c < 0) return point;
  const labels = row.slice(c + 1);
  point.labels = labels === NO_LABELS ? {} : (JSON.parse(decodeURIComponent(labels)) as Record<string, string>);
  return point;
}

export const seriesKey = (metric: string, group: string) => `${metric}|${group}`;

export function splitSeries(series: string): { metric: string; group: string } {
  const bar = series.indexOf('|');
  return { metric: series.slice(0, bar), group: series.slice(bar + 1) };
}

/** The event's group under `metrics_grouping`: dimensions in order, a label's value or `-` when absent. */
export function groupOf(e: TimingEvent, grouping: readonly string[]): string {
  // (A loop, not map and join: ingest makes a group for every event.)
  let group = '';
  for (let i = 0; i < grouping.length; i++) {
    const d = grouping[i];
    const v = d === 'task_type' ? e.task_type : d === 'pool' ? e.pool : d === 'worker_id' ? e.worker_id : e.labels[d];
    group += `${i ? ',' : ''}${d}=${v ?? '-'}`;
  }
  return group;
}

/**
 * What one finished attempt adds to the series, all at its finish time and with one row suffix (its task and
 * change labels): its run time (completed attempts), its queue wait (first attempts) and each metric it reported
 * that is tracked. Failure rate and throughput come from counters. Kept as parallel arrays, not a Sample each:
 * ingest builds this for every event.
 */
export interface EventSamples {
  at: number;
  suffix: string;
  /** The event's group (see groupOf); a sample's series is `seriesKey(metric, group)`. */
  group: string;
  metrics: string[];
  /** As a row holds them (JavaScript's shortest exact form). */
  values: string[];
}

export function eventSamples(e: TimingEvent, config: AnalyzerConfig): EventSamples {
  // (Most events carry none of the change labels: then no object is made for them.)
  let labels: Record<string, string> | undefined;
  for (const k of CHANGE_LABELS) if (e.labels[k] !== undefined) (labels ??= {})[k] = e.labels[k];
  const out: EventSamples = { at: e.finished_at, suffix: rowSuffix(e.task_id, labels), group: groupOf(e, config.grouping), metrics: [], values: [] };
  const add = (metric: string, value: number) => {
    out.metrics.push(metric);
    out.values.push(String(value));
  };
  if (e.outcome === 'completed') add('run_time_ms', e.run_ms);
  if (e.attempt === 1) add('queue_wait_ms', e.wait_ms);
  for (const metric of Object.keys(e.metrics)) {
    if (config.metricsToTrack === null || config.metricsToTrack.includes(metric)) add(metric, e.metrics[metric]);
  }
  return out;
}
