import { parseAnalyzerConfig } from '@fleet/config';
import type { TimingEvent } from '@fleet/contracts';
import { parseSampleRow, sampleRow, samplesOf } from './event-samples.js';

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
    const samples = samplesOf(event, parseAnalyzerConfig({ metrics_grouping: ['model_name'] }).value);
    expect(samples.map((s) => s.series)).toEqual(['run_time_ms|model_name=bert', 'queue_wait_ms|model_name=bert', 'latency_ms|model_name=bert']);
    for (const s of samples) {
      expect(s.labels).toEqual({ commit: 'abc123', branch: 'main feature' });
      expect(parseSampleRow(sampleRow(s))).toEqual({ at: 1750, value: s.value, task_id: 'cpu.odd id/with %', labels: s.labels });
    }
  });

  it('read rows written before samples carried their task', () => {
    expect(parseSampleRow('1750 250')).toEqual({ at: 1750, value: 250 });
  });
});
