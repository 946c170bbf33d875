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

  const withBody = (change: Record<string, unknown>) => ['v', '2', 'e', JSON.stringify({ ...event, ...change })];
  const without = (name: string) => {
    const { [name as keyof TimingEvent]: _gone, ...rest } = event;
    return ['v', '2', 'e', JSON.stringify(rest)];
  };

  it('keeps text with whole surrogate pairs (an emoji in a label or file name)', () => {
    const emoji = { ...event, labels: { ...event.labels, branch: 'feature-\u{1F680}' }, test_file: 'tests/\u{1F680}.py' };
    expect(decodeTimingEvent(encodeTimingEvent(emoji))).toEqual({ ok: true, event: emoji });
  });

  it.each([
    ['an unknown version', ['v', '1', 'e', JSON.stringify(event)], /^v: unsupported version/],
    ['no body', ['v', '2'], /^e: missing/],
    ['a body that is not JSON', ['v', '2', 'e', '{oops'], /JSON/],
    ['a missing task id', without('task_id'), /^task_id: missing/],
    ['an unknown type', withBody({ task_type: 'deploy' }), /^task_type: unknown/],
    ['an unknown outcome', withBody({ outcome: 'exploded' }), /^outcome: unknown/],
    ['a non-numeric time', withBody({ run_ms: 'soon' }), /^run_ms: expected a number/],
    ['a non-numeric metric', withBody({ metrics: { latency_ms: 'fast' } }), /^metrics.latency_ms: unexpected value/],
    ['an array for labels', withBody({ labels: [] }), /^labels: expected a JSON object/],
    ['nothing at all', [], /^v: unsupported version/],
    // Half a surrogate pair, which JSON's escapes can carry: the analyzer's URI encoding of a sample row refuses it.
    ['half a surrogate pair in the task id', withBody({ task_id: 'cpu.\ud800x' }), /^task_id: not Unicode text/],
    ['half a surrogate pair in a label', withBody({ labels: { commit: '\udc00' } }), /^labels.commit: unexpected value/],
    ['half a surrogate pair in a metric name', withBody({ metrics: { ['m\ud800']: 1 } }), /^metrics: a key is not Unicode text/],
    ['half a surrogate pair in the test file', withBody({ test_file: 'a\ud800.py' }), /^test_file: expected a string of Unicode text/],
  ])('reports %s instead of throwing', (_label, input, error) => {
    const r = decodeTimingEvent(input);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(error);
  });
});
