import { applyQuota, type OwnWorker, pickToStop } from './host-plan.js';

const w = (id: string, state: OwnWorker['state'] = 'ready'): OwnWorker => ({ id, state });

describe('pickToStop: idle first, then starting, then the least busy (none busy when idle-only); never one already draining', () => {
  it.each([
    ['idle before busy', [w('a'), w('b')], { a: 2, b: 0 }, 1, ['b']],
    ['starting after idle, before busy', [w('busy'), w('new', 'starting'), w('idle')], { busy: 1, idle: 0 }, 2, ['idle', 'new']],
    ['the least busy of busy ones', [w('a'), w('b'), w('c')], { a: 3, b: 1, c: 2 }, 1, ['b']],
    ['a draining one is not picked again', [w('d', 'draining'), w('a')], { a: 4, d: 0 }, 1, ['a']],
    ['no more than there are', [w('a')], {}, 3, ['a']],
    ['none asked, none picked', [w('a')], {}, 0, []],
  ])('%s', (_name, own, load, n, expected) => {
    expect(pickToStop(own, new Map(Object.entries(load)), n)).toEqual(expected);
  });

  it.each([
    ['idle-only: none of the busy ones, however many are asked for', [w('a'), w('b'), w('c')], { a: 3, b: 1, c: 2 }, 1, []],
    ['idle-only: only the idle and starting ones when more are asked for', [w('a'), w('b'), w('n', 'starting')], { a: 3, b: 0 }, 3, ['b', 'n']],
  ])('%s', (_name, own, load, n, expected) => {
    expect(pickToStop(own, new Map(Object.entries(load)), n, true)).toEqual(expected);
  });
});

describe('applyQuota: a host meets its quota within max_workers', () => {
  const none = new Map<string, number>();
  it.each([
    ['starts up to the quota', { quota: 3, own: [w('a')], alive: 1, maxWorkers: 4 }, { start: 2, stop: [], outcome: 'started 2' }],
    [
      'never above max_workers while others drain',
      { quota: 3, own: [w('a'), w('z', 'draining')], alive: 3, maxWorkers: 4 },
      { start: 1, stop: [], outcome: 'started 1: only room for 1 under max_workers while others drain' },
    ],
    [
      'a crash loop starts none',
      { quota: 2, own: [], alive: 0, maxWorkers: 4, blocked: 'crash loop: 3 exits within 30 s' },
      { start: 0, stop: [], outcome: 'not starting: crash loop: 3 exits within 30 s' },
    ],
    ['stops down to the quota', { quota: 1, own: [w('a'), w('b')], alive: 2, maxWorkers: 4 }, { start: 0, stop: ['a'], outcome: 'stopping 1' }],
    [
      'idle-only: stops only idle workers; the busy stay until idle',
      {
        quota: 0,
        own: [w('a'), w('b')],
        load: new Map([
          ['a', 1],
          ['b', 0],
        ]),
        alive: 2,
        maxWorkers: 4,
        idleOnly: true,
      },
      { start: 0, stop: ['b'], outcome: 'stopping 1 idle; 1 more once idle (they hold tasks)' },
    ],
    [
      'holds at the quota (draining ones not counted)',
      { quota: 1, own: [w('a'), w('d', 'draining')], alive: 2, maxWorkers: 4 },
      { start: 0, stop: [], outcome: 'holding' },
    ],
  ])('%s', (_name, o, expected) => {
    expect(applyQuota({ load: none, ...o })).toEqual(expected);
  });

  it('never plans past max_workers, whatever the quota (all small cases)', () => {
    for (let max = 0; max <= 4; max++)
      for (let alive = 0; alive <= 5; alive++)
        for (let own = 0; own <= Math.min(alive, 4); own++)
          for (let quota = 0; quota <= 6; quota++) {
            const r = applyQuota({ quota, own: Array.from({ length: own }, (_, i) => w(`w${i}`)), load: none, maxWorkers: max, alive });
            expect(alive + r.start).toBeLessThanOrEqual(Math.max(alive, max));
          }
  });
});
