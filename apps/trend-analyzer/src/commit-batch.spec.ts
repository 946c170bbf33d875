import { CommitBatch, idBefore, lastRows } from './analyzer.repository.js';

describe('stream IDs in Redis order', () => {
  it('compare by milliseconds, then sequence, as numbers of any size', () => {
    const sorted = ['0-1', '9-0', '9-5', '9-10', '10-0', '99-99', '100-0', '1796456492264-0', '1796456492264-110', '18446744073709551615-0'];
    for (let i = 0; i < sorted.length; i++) {
      for (let j = 0; j < sorted.length; j++) expect(idBefore(sorted[i], sorted[j])).toBe(i < j);
    }
    // Past 2^53, where Number would round these two to one value.
    expect(idBefore('9007199254740993-0', '9007199254740992-0')).toBe(false);
    expect(idBefore('9007199254740992-0', '9007199254740993-0')).toBe(true);
  });
});

describe('a commit batch', () => {
  const samples = { at: 5, suffix: ' t %7B%7D', group: 'pool=a', metrics: ['run_time_ms', 'queue_wait_ms'], values: ['1', '2'] };

  it('sends IDs and identities one by one, and adds up counters, durations and each series’ rows', () => {
    const batch = new CommitBatch();
    batch.add('7-3', { identity: { bucket: '0', member: 't"\\#1' }, counters: ['events', 1, 'run_ms:a', 12], samples });
    batch.add('7-1', { counters: [] });
    batch.add('7-20', {
      identity: { bucket: '1', member: 'u#1' },
      counters: ['events', 1, 'run_ms:a', 3],
      duration: { key: 'a|"f\\.py', ms: 9.5 },
      samples: { ...samples, at: 6, metrics: ['queue_wait_ms'], values: ['3'] },
    });
    // The same event again (its identity earlier in the batch), and one known to have been counted before.
    batch.add('7-21', { identity: { bucket: '0', member: 't"\\#1' }, counters: ['events', 1], samples });
    batch.add('7-22', { identity: { bucket: '1', member: 'v#1' }, counters: ['events', 1], samples }, true);
    expect(batch.size).toBe(5);
    expect(batch.statuses).toEqual([1, 1, 1, 2, 2]);
    expect(batch.args()).toEqual([
      ...['7-1', '7-22', 5, '7-3', '7-1', '7-20', '7-21', '7-22'],
      ...[2, '0', 1, 't"\\#1', '1', 1, 'u#1'],
      ...[3, 'events', 2, 'run_ms:a', 15, 'duplicates', 2],
      ...[1, 'a|"f\\.py', 1, 9.5],
      ...[2, 'run_time_ms|pool=a', 1, '5 1 t %7B%7D', 'queue_wait_ms|pool=a', 2, '5 2 t %7B%7D\n6 3 t %7B%7D'],
    ]);
  });

  it('reads a commit that did not apply into a verdict per entry', () => {
    const batch = new CommitBatch();
    batch.add('1-0', { identity: { bucket: '0', member: 'a#1' }, counters: [] });
    batch.add('1-1', { identity: { bucket: '1', member: 'b#1' }, counters: [] });
    batch.add('1-2', { counters: [] });
    batch.add('1-3', { identity: { bucket: '0', member: 'c#1' }, counters: [] });
    batch.add('1-4', { identity: { bucket: '0', member: 'a#1' }, counters: [] });
    // Pending: all but 1-2. Counted before, in the order sent (bucket 0: a, c; bucket 1: b): c.
    expect(batch.verdicts([-1, 1, 1, 0, 1, 1, 0, 1, 0])).toEqual([1, 1, 0, 2, 1]);
  });

  it('makes a later entry of an event known to be counted a duplicate too, and sends no empty bucket', () => {
    const batch = new CommitBatch();
    batch.add('1-0', { identity: { bucket: '0', member: 'a#1' }, counters: ['events', 1] }, true);
    batch.add('1-1', { identity: { bucket: '0', member: 'a#1' }, counters: ['events', 1] });
    expect(batch.statuses).toEqual([2, 2]);
    expect(batch.args()).toEqual(['1-0', '1-1', 2, '1-0', '1-1', 0, 1, 'duplicates', 2, 0, 0]);
  });
});

describe('a series list read back', () => {
  it('splits elements into rows and keeps the last ones asked for', () => {
    expect(lastRows(['1 1', '2 2\n3 3\n4 4', '5 5'], 3)).toEqual(['3 3', '4 4', '5 5']);
    expect(lastRows(['1 1\n2 2'], 10)).toEqual(['1 1', '2 2']);
    expect(lastRows(['1 1'], 0)).toEqual([]);
  });
});
