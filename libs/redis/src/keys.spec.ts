import { FleetKeys } from './keys.js';

describe('FleetKeys', () => {
  const k = new FleetKeys('ci-42');

  it('builds every name from the one prefix', () => {
    expect({
      bull: k.queuePrefix('cpu'),
      worker: k.worker('w1'),
      workers: k.workerIndex,
      timings: k.timings,
      idempotency: k.idempotency('ci', 'nightly'),
      queuedBy: k.queuedBy('cpu', 'ci'),
      cancelled: k.cancelled('cpu.x'),
      lease: k.managerLease,
      pins: k.pins,
      decisions: k.decisions,
      alerts: k.alerts,
      series: k.analyzerSeries('run_time_ms|model_name=x'),
      seriesPrefix: k.analyzerSeriesPrefix,
      seriesIndex: k.analyzerSeriesIndex,
      held: k.analyzerSeriesHeld,
      counts: k.analyzerSeriesCountsPrefix,
      counters: k.analyzerCounters,
      activeAlerts: k.analyzerActiveAlerts,
      gaps: k.analyzerGaps,
      seen: k.analyzerSeenPrefix,
      period: k.analyzerPeriod(7),
      rateLimit: k.rateLimit('ci'),
      everything: k.everything,
    }).toEqual({
      bull: 'ci-42:q',
      worker: 'ci-42:worker:w1',
      workers: 'ci-42:workers',
      timings: 'ci-42:timings',
      idempotency: 'ci-42:idem:ci:nightly',
      queuedBy: 'ci-42:q:cpu:queued-by:ci',
      cancelled: 'ci-42:cancelled:cpu.x',
      lease: 'ci-42:rm:lease',
      pins: 'ci-42:rm:pins',
      decisions: 'ci-42:rm:decisions',
      alerts: 'ci-42:alerts',
      series: 'ci-42:ta:s:run_time_ms|model_name=x',
      seriesPrefix: 'ci-42:ta:s:',
      seriesIndex: 'ci-42:ta:series',
      held: 'ci-42:ta:held',
      counts: 'ci-42:ta:n:',
      counters: 'ci-42:ta:counters',
      activeAlerts: 'ci-42:ta:alerts:active',
      gaps: 'ci-42:ta:gaps',
      seen: 'ci-42:ta:seen:',
      period: 'ci-42:ta:period:7',
      rateLimit: 'ci-42:rl:ci',
      everything: ['ci-42:*'],
    });
  });

  it('keeps queue keys apart from the fleet’s own, whatever a pool is called', () => {
    // BullMQ's keys for a pool named "worker" start with `<prefix>:q:worker:`, never `<prefix>:worker:`.
    const queueKey = `${k.queuePrefix('worker')}:worker:1`;
    expect(queueKey.startsWith(`${k.prefix}:worker:`)).toBe(false);
    expect(queueKey.startsWith(`${k.prefix}:`)).toBe(true);
  });

  it('spreads pools under hash tags of their own, the fleet’s keys under its tag', () => {
    const one = new FleetKeys('{ci}');
    const spread = new FleetKeys('{ci}', 'pools');
    expect([one.queueKey('cpu', 'wait'), one.timings, one.everything]).toEqual(['{ci}:q:cpu:wait', '{ci}:timings', ['{ci}:*', '{ci:*']]);
    expect([
      spread.queueKey('cpu', 'wait'),
      spread.queuedBy('gpu', 'ci'),
      spread.batchPart('cpu', 'b1'),
      spread.timings,
      spread.pendingBatches,
    ]).toEqual(['{ci:cpu}:q:cpu:wait', '{ci:gpu}:q:gpu:queued-by:ci', '{ci:cpu}:q:cpu:batch:b1', '{ci}:timings', '{ci}:batches:pending']);
    // Another fleet's keys never match: no prefix holds a colon.
    expect(spread.everything).toEqual(['{ci}:*', '{ci:*']);
    expect(() => new FleetKeys('ci', 'pools')).toThrow(/hash-tag prefix/);
  });

  it.each(['', 'a:b', 'a b', 'x'.repeat(65), 'é'])('refuses the prefix %p', (p) => {
    expect(() => new FleetKeys(p)).toThrow(RangeError);
  });
});
