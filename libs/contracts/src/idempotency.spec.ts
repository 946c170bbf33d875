import { claimStep, claimersOf, outcomesOf, pendingClaim, readClaim, toQueue } from './idempotency.js';

describe('idempotency claims', () => {
  it.each([
    [null, { kind: 'free' }],
    ['t-1', { kind: 'committed', id: 't-1' }],
    [pendingClaim('r1', 't-1'), { kind: 'pending', request: 'r1', id: 't-1' }],
  ])('read %p as %p', (value, expected) => {
    expect(readClaim(value)).toEqual(expected);
  });

  it.each([
    ['a free key is claimed', null, { kind: 'claim' }],
    ['a committed key makes a duplicate of its task', 'theirs', { kind: 'duplicate', of: 'theirs' }],
    ['a key committed to this very task is a duplicate too (a retried request)', 't-1', { kind: 'duplicate', of: 't-1' }],
    ["another request's pending claim is waited for", pendingClaim('r2', 'theirs'), { kind: 'wait', of: 'theirs' }],
    ["another request's pending claim for the same task is waited for too", pendingClaim('r2', 't-1'), { kind: 'wait', of: 't-1' }],
    ["this request's own pending claim is still its own", pendingClaim('r1', 't-1'), { kind: 'claim' }],
  ])('%s', (_, previous, expected) => {
    expect(claimStep(previous, pendingClaim('r1', 't-1'))).toEqual(expected);
  });
});

describe('idempotency outcomes', () => {
  const a1 = { id: 'p1-a', key: 'a' };
  const a2 = { id: 'p2-a', key: 'a' }; // the same key, routed to another pool
  const b = { id: 'p1-b', key: 'b' };
  const plain = { id: 'p1-x' };

  it('the first task of each key claims it', () => {
    expect([...claimersOf([plain, a1, b, a2])]).toEqual([
      ['a', a1],
      ['b', b],
    ]);
  });

  it.each([
    ['nothing held: every claimer and every keyless task is queued', [plain, a1, b], {}, [plain, a1, b], ['queued', 'queued', 'queued']],
    [
      'a key held by an earlier request: its task is not queued, the holder is answered',
      [a1, plain],
      { a: 'old-a' },
      [plain],
      ['earlier-request', 'queued'],
    ],
    ['a key twice in one request, in two pools: one job, the second follows the first', [a1, a2], {}, [a1], ['queued', 'same-request']],
    ['a key twice in one request, held already: neither is queued', [a1, a2], { a: 'old-a' }, [], ['earlier-request', 'earlier-request']],
  ])('%s', (_, tasks, held, queued, kinds) => {
    const holders = new Map(Object.entries(held));
    expect(toQueue(tasks, holders)).toEqual(queued);
    const outcomes = outcomesOf(tasks, holders);
    expect(outcomes.map((o) => o.kind)).toEqual(kinds);
    // Every task that follows another names a task that is queued by this request or held by an earlier one.
    for (const o of outcomes) {
      if (o.kind === 'same-request') expect(queued.map((t) => t.id)).toContain(o.id);
      if (o.kind === 'earlier-request') expect([...holders.values()]).toContain(o.id);
    }
  });
});
