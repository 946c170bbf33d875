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
  return s.task_id === undefined
    ? `${s.at} ${s.value}`
    : `${s.at} ${s.value} ${encodeURIComponent(s.task_id)} ${encodeURIComponent(JSON.stringify(s.labels ?? {}))}`;
}

export function parseSampleRow(row: string): { at: number; value: number; task_id?: string; labels?: Record<string, string> } {
  const [at, value, task, labels] = row.split(' ');
  return {
    at: Number(at),
    value: Number(value),
    ...(task !== undefined && { task_id: decodeURIComponent(task) }),
    ...(labels !== undefined && { labels: JSON.parse(decodeURIComponent(labels)) as Record<string, string> }),
  };
}

export const seriesKey = (metric: string, group: string) => `${metric}|${group}`;

export function splitSeries(series: string): { metric: string; group: string } {
  const bar = series.indexOf('|');
  return { metric: series.slice(0, bar), group: series.slice(bar + 1) };
}

/** The event's group under `metrics_grouping`: dimensions in order, a label's value or `-` when absent. */
export function groupOf(e: TimingEvent, grouping: readonly string[]): string {
  return grouping
    .map((d) => {
      const v = d === 'task_type' ? e.task_type : d === 'pool' ? e.pool : d === 'worker_id' ? e.worker_id : e.labels[d];
      return `${d}=${v ?? '-'}`;
    })
    .join(',');
}

/**
 * What one finished attempt adds to the series: its run time (completed attempts), its queue wait (first
 * attempts) and each metric it reported that is tracked. Failure rate and throughput come from counters.
 */
export function samplesOf(e: TimingEvent, config: AnalyzerConfig): Sample[] {
  const group = groupOf(e, config.grouping);
  const at = e.finished_at;
  const labels = Object.fromEntries(CHANGE_LABELS.flatMap((k) => (e.labels[k] !== undefined ? [[k, e.labels[k]]] : [])));
  const meta = { task_id: e.task_id, labels };
  const out: Sample[] = [];
  if (e.outcome === 'completed') out.push({ series: seriesKey('run_time_ms', group), at, value: e.run_ms, ...meta });
  if (e.attempt === 1) out.push({ series: seriesKey('queue_wait_ms', group), at, value: e.wait_ms, ...meta });
  for (const [metric, value] of Object.entries(e.metrics)) {
    if (config.metricsToTrack === null || config.metricsToTrack.includes(metric)) out.push({ series: seriesKey(metric, group), at, value, ...meta });
  }
  return out;
}
