import { decodeTimingEvent, encodeTimingEvent, type TimingEvent } from './timing-event.js';

const event: TimingEvent = {
  task_id: 'cpu.8d6f6a36-6f0e-4a43-9b0f-0d8f2f0f5d11',
  task_type: 'benchmark',
  pool: 'cpu',
  worker_id: 'w1',
  attempt: 2,
  outcome: 'failed',
  final: false,
  reason: 'benchmark_failed',
  queued_at: 1000,
  started_at: 1500,
  finished_at: 1750,
  wait_ms: 500,
  run_ms: 250,
  metrics: { latency_ms: 12.5 },
  labels: { model_name: 'bert' },
};

describe('timing events', () => {
  it('round-trip through stream fields', () => {
    expect(decodeTimingEvent(encodeTimingEvent(event))).toEqual({ ok: true, event });
    const { reason: _r, ...success } = event;
    const done = { ...success, outcome: 'completed' as const, final: true };
    expect(decodeTimingEvent(encodeTimingEvent(done))).toEqual({ ok: true, event: done });
  });

  const fields = encodeTimingEvent(event);
  const replace = (name: string, value: string) => fields.map((f, i) => (i > 0 && fields[i - 1] === name && i % 2 === 1 ? value : f));
  const without = (name: string) => fields.filter((_f, i) => fields[i - (i % 2)] !== name);

  it.each([
    ['an unknown version', replace('v', '9'), /^v: unsupported version/],
    ['a missing task id', without('task_id'), /^task_id: missing/],
    ['an unknown type', replace('task_type', 'deploy'), /^task_type: unknown/],
    ['an unknown outcome', replace('outcome', 'exploded'), /^outcome: unknown/],
    ['a non-numeric time', replace('run_ms', 'soon'), /^run_ms: expected a number/],
    ['metrics that are not JSON', replace('metrics', '{oops'), /JSON/],
    ['a non-numeric metric', replace('metrics', '{"latency_ms":"fast"}'), /^metrics.latency_ms: unexpected value/],
    ['an array for labels', replace('labels', '[]'), /^labels: expected a JSON object/],
    ['nothing at all', [], /^v: unsupported version/],
  ])('reports %s instead of throwing', (_label, input, error) => {
    const r = decodeTimingEvent(input);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(error);
  });
});
