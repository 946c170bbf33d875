import { CommitBatch, idBefore } from './analyzer.repository.js';

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
  it('names each series and counter once, spans its IDs, and lays each entry out flat', () => {
    const batch = new CommitBatch();
    const samples = { at: 5, suffix: ' t %7B%7D', group: 'pool=a', metrics: ['run_time_ms', 'queue_wait_ms'], values: ['1', '2'] };
    batch.add('7-3', { identity: { bucket: '0', member: 't"\\#1' }, counters: ['events', 1, 'run_ms:a', 12], samples });
    batch.add('7-1', { counters: [] });
    batch.add('7-20', {
      counters: ['events', 1],
      duration: { key: 'a|"f\\.py', ms: 9.5 },
      samples: { ...samples, metrics: ['queue_wait_ms'], values: ['3'] },
    });
    expect(batch.size).toBe(3);
    expect(JSON.parse(batch.toJSON())).toEqual({
      s: ['run_time_ms|pool=a', 'queue_wait_ms|pool=a'],
      c: ['events', 'run_ms:a'],
      lo: '7-1',
      hi: '7-20',
      e: [
        ['7-3', '0', 't"\\#1', '', 0, 4, 0, 1, 1, 12, '5', ' t %7B%7D', 4, 0, '1', 1, '2'],
        ['7-1', '', '', '', 0, 0, '', '', 0],
        ['7-20', '', '', 'a|"f\\.py', 9.5, 2, 0, 1, '5', ' t %7B%7D', 2, 1, '3'],
      ].flat(),
    });
  });
});
