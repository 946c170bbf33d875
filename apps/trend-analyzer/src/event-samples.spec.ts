import { parseAnalyzerConfig } from '@fleet/config';
import type { TimingEvent } from '@fleet/contracts';
import { eventSamples, parseSampleRow, rowSuffix } from './event-samples.js';

const event: TimingEvent = {
  task_id: 'cpu.odd id/with %',
  task_type: 'synthetic',
  pool: 'cpu',
  worker_id: 'w1',
  attempt: 1,
  outcome: 'completed',
  final: true,
  queued_at: 1000,
  started_at: 1500,
  finished_at: 1750,
  wait_ms: 500,
  run_ms: 250,
  metrics: { latency_ms: 12 },
  labels: { model_name: 'bert', commit: 'abc123', branch: 'main feature', secret: 'not kept' },
};

describe('samples', () => {
  it('keep the task and the labels that say where a change began, and read back the same whatever the task id holds', () => {
    const samples = eventSamples(event, parseAnalyzerConfig({ metrics_grouping: ['model_name'] }).value);
    expect(samples.group).toBe('model_name=bert');
    expect(samples.metrics).toEqual(['run_time_ms', 'queue_wait_ms', 'latency_ms']);
    expect(samples.values).toEqual(['250', '500', '12']);
    for (const value of samples.values) {
      expect(parseSampleRow(`${samples.at} ${value}${samples.suffix}`)).toEqual({
        at: 1750,
        value: Number(value),
        task_id: 'cpu.odd id/with %',
        labels: { commit: 'abc123', branch: 'main feature' },
      });
    }
  });

  it('read rows written before samples carried their task', () => {
    expect(parseSampleRow('1750 250')).toEqual({ at: 1750, value: 250 });
  });

  it('read rows with no labels, a plain task id, and values in any number form', () => {
    expect(parseSampleRow(`1750 0.30000000000000004${rowSuffix('cpu.1', {})}`)).toEqual({
      at: 1750,
      value: 0.30000000000000004,
      task_id: 'cpu.1',
      labels: {},
    });
    expect(parseSampleRow(`1750 1e+21${rowSuffix('a%b c', { commit: '{}' })}`)).toEqual({
      at: 1750,
      value: 1e21,
      task_id: 'a%b c',
      labels: { commit: '{}' },
    });
  });
});
