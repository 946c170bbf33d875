import { FleetKeys } from './keys.js';

describe('FleetKeys', () => {
  const k = new FleetKeys('ci-42');

  it('builds every name from the one prefix', () => {
    expect({
      bull: k.bullPrefix,
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
      everything: 'ci-42:*',
    });
  });

  it('keeps queue keys apart from the fleet’s own, whatever a pool is called', () => {
    // BullMQ's keys for a pool named "worker" start with `<prefix>:q:worker:`, never `<prefix>:worker:`.
    const queueKey = `${k.bullPrefix}:worker:1`;
    expect(queueKey.startsWith(`${k.prefix}:worker:`)).toBe(false);
    expect(queueKey.startsWith(`${k.prefix}:`)).toBe(true);
  });

  it.each(['', 'a:b', 'a b', 'x'.repeat(65), 'é'])('refuses the prefix %p', (p) => {
    expect(() => new FleetKeys(p)).toThrow(RangeError);
  });
});
