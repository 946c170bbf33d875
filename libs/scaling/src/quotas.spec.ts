import { assignQuotas, type HostForPool } from './quotas.js';

const host = (id: string, o: Partial<HostForPool> = {}): HostForPool => ({
  id,
  limit: 10,
  slots: 4,
  usedByOtherPools: 0,
  cost: 1,
  quota: 0,
  live: 0,
  ...o,
});
const sum = (q: Record<string, number>) => Object.values(q).reduce((s, n) => s + n, 0);

describe('assignQuotas', () => {
  it('spreads a burst over hosts by free slots, within each host’s limit', () => {
    const r = assignQuotas({ desired: 6, maxWorkers: 10, unowned: 0, hosts: [host('a'), host('b'), host('c', { limit: 1 })] });
    expect(r.quotas).toEqual({ a: 3, b: 2, c: 1 });
    expect(r.unplaced).toBe(0);
  });

  it('weighs hosts by their slots and what other pools already use', () => {
    const r = assignQuotas({
      desired: 6,
      maxWorkers: 10,
      unowned: 0,
      hosts: [host('big', { slots: 8 }), host('small', { slots: 2 }), host('busy', { slots: 8, usedByOtherPools: 7 })],
    });
    expect(r.quotas).toEqual({ big: 6, busy: 0, small: 0 });
    const more = assignQuotas({ desired: 9, maxWorkers: 10, unowned: 0, hosts: [host('big', { slots: 8 }), host('small', { slots: 2 })] });
    expect(more.quotas).toEqual({ big: 8, small: 1 });
  });

  it('keeps existing quotas where they fit (no churn) and shrinks the fullest host first', () => {
    const r = assignQuotas({
      desired: 3,
      maxWorkers: 10,
      unowned: 0,
      hosts: [host('a', { quota: 2, live: 2 }), host('b', { quota: 2, live: 2, slots: 2 })],
    });
    expect(r.quotas).toEqual({ a: 2, b: 1 });
  });

  it('never plans past max_workers, and says what it could not place', () => {
    const r = assignQuotas({ desired: 20, maxWorkers: 5, unowned: 0, hosts: [host('a'), host('b')] });
    expect(sum(r.quotas)).toBe(5);
    const full = assignQuotas({ desired: 8, maxWorkers: 10, unowned: 0, hosts: [host('a', { limit: 2 }), host('b', { limit: 3 })] });
    expect(full.quotas).toEqual({ a: 2, b: 3 });
    expect(full.unplaced).toBe(3);
    // Slots weigh the spread but do not cap it: two 2-slot hosts still run 8 workers between them.
    const over = assignQuotas({ desired: 8, maxWorkers: 10, unowned: 0, hosts: [host('a', { slots: 2 }), host('b', { slots: 2 })] });
    expect(over.quotas).toEqual({ a: 4, b: 4 });
  });

  it('moves a quota only once the host it leaves has stopped its workers', () => {
    // max 4: a holds 4 live; b joins with more free slots. Lowering a frees nothing until its workers go.
    const hosts = [host('a', { quota: 4, live: 4, slots: 4 }), host('b', { slots: 8 })];
    const first = assignQuotas({ desired: 4, maxWorkers: 4, unowned: 0, hosts });
    expect(first.quotas).toEqual({ a: 4, b: 0 });
    // Fewer wanted: a is lowered; b gets nothing while a still runs its workers.
    const lowered = assignQuotas({ desired: 2, maxWorkers: 4, unowned: 0, hosts });
    expect(lowered.quotas.a + lowered.quotas.b).toBe(2);
    // Worker-for-worker: with a at quota 2 but 4 still live, a raise of b waits.
    // Two hosts, max 4: a lowered to quota 2, b with room; a raise of b waits for a's workers to go.
    const moving = (aLive: number) =>
      assignQuotas({ desired: 4, maxWorkers: 4, unowned: 0, hosts: [host('a', { quota: 2, live: aLive, slots: 2 }), host('b', { slots: 8 })] });
    const waiting = moving(4);
    expect(waiting.quotas).toEqual({ a: 2, b: 0 });
    expect(waiting.unplaced).toBe(2);
    const later = moving(2);
    expect(later.quotas).toEqual({ a: 2, b: 2 });
  });

  it('counts workers no live host owns (started by hand, or on a host that is gone) against max_workers', () => {
    const r = assignQuotas({ desired: 4, maxWorkers: 4, unowned: 3, hosts: [host('a')] });
    expect(r.quotas).toEqual({ a: 1 });
    const gone = assignQuotas({ desired: 4, maxWorkers: 4, unowned: 4, hosts: [host('a')] });
    expect(gone.quotas).toEqual({ a: 0 });
  });

  it('a host not offering the pool gets nothing; no host at all places nothing', () => {
    expect(assignQuotas({ desired: 2, maxWorkers: 4, unowned: 0, hosts: [host('a', { limit: 0 }), host('b')] }).quotas).toEqual({ b: 2 });
    expect(assignQuotas({ desired: 2, maxWorkers: 4, unowned: 0, hosts: [] })).toEqual({ quotas: {}, unplaced: 2 });
  });

  it('keeps the bound under random fleets: Σ max(live, quota) + unowned never passes max_workers by a raise', () => {
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 2000; i++) {
      const maxWorkers = 1 + rnd(12);
      const hosts = Array.from({ length: 1 + rnd(4) }, (_, k) =>
        host(`h${k}`, { limit: rnd(6), slots: 1 + rnd(8), quota: rnd(5), live: rnd(5), usedByOtherPools: rnd(3) }),
      );
      const unowned = rnd(3);
      const before = unowned + hosts.reduce((s, h) => s + Math.max(h.live, h.quota), 0);
      const r = assignQuotas({ desired: rnd(15), maxWorkers, unowned, hosts });
      const after = unowned + hosts.reduce((s, h) => s + Math.max(h.live, h.quota, r.quotas[h.id] ?? 0), 0);
      expect(after).toBeLessThanOrEqual(Math.max(maxWorkers, before));
      for (const h of hosts) expect(r.quotas[h.id] ?? 0).toBeLessThanOrEqual(Math.max(h.limit > 0 ? h.limit : 0, 0));
    }
  });
});
