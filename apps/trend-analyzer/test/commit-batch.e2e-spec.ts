import type { Redis } from 'ioredis';
import { cleanupPrefix, testRedis, uniquePrefix } from '@fleet/testing';
import { APPEND_SAMPLES, COMMIT_BATCH } from '../src/analyzer-scripts.js';
import { CommitBatch, type EntryEffects, lastRows } from '../src/analyzer.repository.js';
import { parseSampleRow, rowSuffix, sampleRow } from '../src/event-samples.js';

/**
 * The analyzer's commit script on a real Redis: a batch applies whole, only while every entry is pending for
 * the analyzer and no event in it was counted before; otherwise nothing is written and the reply says which
 * entries are not the analyzer's and which events were counted. Whether the script asks once for the batch
 * (XPENDING over its range) or entry by entry, the answers are the same.
 */
describe('the analyzer commit script', () => {
  let redis: Redis;
  const prefix = uniquePrefix('commit');
  const k = (name: string) => `${prefix}:${name}`;
  let n = 0;
  const WINDOW = 100;

  beforeAll(() => {
    redis = testRedis();
  });
  afterAll(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  /** A stream with `count` entries delivered to consumer `c`; returns the stream's key and the entries' ids. */
  async function delivered(count: number): Promise<{ stream: string; ids: string[] }> {
    const stream = k(`timings${n++}`);
    await redis.xgroup('CREATE', stream, 'g', '0', 'MKSTREAM');
    for (let i = 0; i < count; i++) await redis.xadd(stream, '*', 'i', String(i));
    const reply = (await redis.xreadgroup('GROUP', 'g', 'c', 'COUNT', count, 'STREAMS', stream, '>')) as Array<[string, Array<[string, string[]]>]>;
    return { stream, ids: reply[0][1].map(([id]) => id) };
  }

  const effects = (member: string): EntryEffects => ({
    identity: { bucket: 'b', member },
    counters: ['events', 1],
    samples: { at: 1, suffix: '', group: `s-${member}`, metrics: ['m'], values: [String(member.length)] },
  });

  /** Commits entries (id, identity member) as consumer `c` (see commitEffects). */
  async function commit(stream: string, entries: Array<[string, string]>, duplicates: string[] = []) {
    return commitEffects(
      stream,
      entries.map(([id, member]) => [id, effects(member)]),
      duplicates,
    );
  }

  /**
   * Commits a batch as consumer `c`: once applied, the events counter and each entry's status (1 applied, 2 a
   * duplicate); otherwise each entry's verdict (0 not pending for c, 2 counted before, 1 neither).
   */
  async function commitEffects(
    stream: string,
    entries: Array<[string, EntryEffects]>,
    duplicates: string[] = [],
  ): Promise<{ counted: number; statuses: readonly number[] } | { verdicts: number[] }> {
    const batch = new CommitBatch();
    for (const [id, e] of entries) batch.add(id, e, duplicates.includes(id));
    const reply = (await redis.eval(
      COMMIT_BATCH,
      6,
      stream,
      `${stream}:counters`,
      `${stream}:index`,
      `${stream}:durations`,
      `${stream}:versions`,
      `${stream}:held`,
      'g',
      `${stream}:series:`,
      `${stream}:counts:`,
      `${stream}:seen:`,
      60,
      WINDOW,
      1000,
      'c',
      ...batch.args(),
    )) as number[];
    return reply[0] === -1 ? { verdicts: batch.verdicts(reply) } : { counted: reply[0], statuses: batch.statuses };
  }

  /**
   * The series' list holds the window's last rows of `written`, passes it by less than a quarter and its largest
   * element, and agrees with the held record of its last trim (rows then, at a version: the rows since are the
   * versions since). Returns the rows it holds.
   */
  async function keptRows(stream: string, series: string, written: string[]): Promise<number> {
    const elements = await redis.lrange(`${stream}:series:${series}`, 0, -1);
    const rows = lastRows(elements, Infinity).length;
    const largest = Math.max(...elements.map((e) => e.split('\n').length));
    expect(rows).toBeGreaterThanOrEqual(Math.min(WINDOW, written.length));
    expect(rows).toBeLessThan(WINDOW + Math.ceil(WINDOW / 4) + largest);
    expect(lastRows(elements, WINDOW)).toEqual(written.slice(-WINDOW));
    const [record, version] = await Promise.all([redis.hget(`${stream}:held`, series), redis.hget(`${stream}:versions`, series)]);
    if (record !== null) {
      const [held, at] = record.split(' ').map(Number);
      expect(held + Number(version) - at).toBe(rows);
    }
    return rows;
  }

  const pendingFor = async (stream: string, consumer: string) =>
    ((await redis.xpending(stream, 'g', '-', '+', 100, consumer)) as Array<[string]>).map(([id]) => id);

  it('applies each pending entry once, counts a repeated (task, attempt) as a duplicate, and acknowledges them', async () => {
    const { stream, ids } = await delivered(3);
    const first = await commit(stream, [
      [ids[0], 'task-a#1'],
      [ids[1], 'task-b#1'],
      [ids[2], 'task-a#1'],
    ]);
    expect(first).toEqual({ counted: 2, statuses: [1, 1, 2] });
    expect(await pendingFor(stream, 'c')).toEqual([]);
    expect(await redis.hgetall(`${stream}:counters`)).toEqual({ events: '2', duplicates: '1' });
    // Read again (a crash after the commit): the entry is no longer pending, and nothing changes.
    expect(await commit(stream, [[ids[0], 'task-a#1']])).toEqual({ verdicts: [0] });
    expect(await redis.hgetall(`${stream}:counters`)).toEqual({ events: '2', duplicates: '1' });
  });

  it('writes nothing while an entry is another analyzer’s, and applies once it is left out', async () => {
    const { stream, ids } = await delivered(2);
    await redis.xclaim(stream, 'g', 'other', 0, ids[1]);
    expect(
      await commit(stream, [
        [ids[0], 'task-c#1'],
        [ids[1], 'task-d#1'],
      ]),
    ).toEqual({ verdicts: [1, 0] });
    expect(await pendingFor(stream, 'c')).toEqual([ids[0]]);
    expect(await redis.exists(`${stream}:counters`, `${stream}:series:m|s-task-c#1`, `${stream}:seen:b`)).toBe(0);
    expect(await commit(stream, [[ids[0], 'task-c#1']])).toEqual({ counted: 1, statuses: [1] });
    expect(await pendingFor(stream, 'other')).toEqual([ids[1]]);
  });

  it('writes nothing while an event in it was counted before, and counts it as a duplicate when told', async () => {
    const { stream, ids } = await delivered(3);
    expect(await commit(stream, [[ids[0], 'task-f#1']])).toEqual({ counted: 1, statuses: [1] });
    // The worker repeated its write: the same (task, attempt) in a later entry.
    const batch: Array<[string, string]> = [
      [ids[1], 'task-g#1'],
      [ids[2], 'task-f#1'],
    ];
    expect(await commit(stream, batch)).toEqual({ verdicts: [1, 2] });
    expect(await redis.hgetall(`${stream}:counters`)).toEqual({ events: '1' });
    expect(await commit(stream, batch, [ids[2]])).toEqual({ counted: 2, statuses: [1, 2] });
    expect(await redis.hgetall(`${stream}:counters`)).toEqual({ events: '2', duplicates: '1' });
    expect(await redis.smembers(`${stream}:seen:b`)).toEqual(expect.arrayContaining(['task-f#1', 'task-g#1']));
    expect(await pendingFor(stream, 'c')).toEqual([]);
  });

  it('gives the same answers entry by entry when its pending range holds more entries than it asks for', async () => {
    // 30 entries pending for c; a batch of the first and the last spans all 30, more than the script's limit
    // for a batch of two, so it asks entry by entry; the 28 between stay pending.
    const { stream, ids } = await delivered(30);
    await redis.xclaim(stream, 'g', 'other', 0, ids[29]);
    expect(
      await commit(stream, [
        [ids[0], 'task-e#1'],
        [ids[29], 'task-e#1'],
      ]),
    ).toEqual({ verdicts: [1, 0] });
    expect(
      await commit(stream, [
        [ids[0], 'task-e#1'],
        [ids[28], 'task-e#1'],
      ]),
    ).toEqual({ counted: 1, statuses: [1, 2] });
    expect(await pendingFor(stream, 'c')).toEqual(ids.slice(1, 28));
  });

  it('writes each sample as sampleRow does, under its series, and adds up counters and durations over the batch', async () => {
    const { stream, ids } = await delivered(4);
    const labels = { commit: 'a b/c', branch: 'x"y' };
    const samples = (task: string, values: string[]) => ({
      at: 1750,
      suffix: rowSuffix(task, labels),
      group: 'pool=cpu',
      metrics: ['run_time_ms', 'latency_ms'].slice(0, values.length),
      values,
    });
    expect(
      await commitEffects(stream, [
        [
          ids[0],
          {
            identity: { bucket: 'b', member: 't1#1' },
            duration: { key: 'cpu|tests/a.py', ms: 100 },
            counters: ['events', 1, 'run_ms:cpu', 250],
            samples: samples('t1', ['250', '0.30000000000000004']),
          },
        ],
        [ids[1], { counters: ['malformed', 1] }],
        [
          ids[2],
          {
            identity: { bucket: 'b', member: 'odd "task" [1]#2' },
            duration: { key: 'cpu|tests/a.py', ms: 200 },
            counters: ['events', 1, 'run_ms:cpu', 100],
            samples: samples('odd "task" [1]', ['1e+21']),
          },
        ],
        [ids[3], { counters: [] }],
      ]),
    ).toEqual({ counted: 2, statuses: [1, 1, 1, 1] });
    // One element a series and commit, its rows in the order the entries came.
    const elements = await redis.lrange(`${stream}:series:run_time_ms|pool=cpu`, 0, -1);
    expect(elements).toHaveLength(1);
    const rows = lastRows(elements, WINDOW);
    expect(rows).toEqual([
      sampleRow({ series: '', at: 1750, value: 250, task_id: 't1', labels }),
      sampleRow({ series: '', at: 1750, value: 1e21, task_id: 'odd "task" [1]', labels }),
    ]);
    expect(rows.map((r) => parseSampleRow(r).task_id)).toEqual(['t1', 'odd "task" [1]']);
    expect(lastRows(await redis.lrange(`${stream}:series:latency_ms|pool=cpu`, 0, -1), WINDOW)).toEqual([
      sampleRow({ series: '', at: 1750, value: 0.30000000000000004, task_id: 't1', labels }),
    ]);
    expect(await redis.hgetall(`${stream}:counters`)).toEqual({ events: '2', malformed: '1', 'run_ms:cpu': '350' });
    // The mean moves entry by entry, each step rounded down: 100, then floor(0.7 × 100 + 0.3 × 200) = 130.
    expect(await redis.hget(`${stream}:durations`, 'cpu|tests/a.py')).toBe('130');
    expect(await redis.hgetall(`${stream}:versions`)).toEqual({ 'run_time_ms|pool=cpu': '2', 'latency_ms|pool=cpu': '1' });
    // No series passed a quarter window (25 rows): nothing was trimmed or counted, the commit pushed and moved versions only.
    expect(await redis.hgetall(`${stream}:held`)).toEqual({});
    expect(await pendingFor(stream, 'c')).toEqual([]);
  });

  it('keeps each series to its window, in whole elements, whether ingest or the derived rates append to it', async () => {
    const batches = 6;
    const perBatch = 45;
    const { stream, ids } = await delivered(batches * perBatch);
    const series = 'run_time_ms|pool=w';
    const list = `${stream}:series:${series}`;
    // A list written one row an element, with no count of its rows: counted by its length.
    const old = ['1 1', '2 2', '3 3'];
    await redis.rpush(list, ...old);
    await redis.sadd(`${stream}:index`, series);
    const written = [...old];
    const kept = () => keptRows(stream, series, written);
    for (let b = 0; b < batches; b++) {
      const entries = ids.slice(b * perBatch, (b + 1) * perBatch).map((id, i): [string, EntryEffects] => {
        const at = 10 + b * perBatch + i;
        written.push(`${at} ${at}`);
        return [id, { counters: ['events', 1], samples: { at, suffix: '', group: 'pool=w', metrics: ['run_time_ms'], values: [String(at)] } }];
      });
      expect(await commitEffects(stream, entries)).toMatchObject({ counted: (b + 1) * perBatch });
      await kept();
    }
    expect(written.length).toBe(batches * perBatch + old.length);
    // The derived rates' script appends a row at a time and keeps the same count.
    const rates = Array.from({ length: 40 }, (_, i) => `${1000 + i} 9`);
    await redis.eval(
      APPEND_SAMPLES,
      4,
      `${stream}:index`,
      `${stream}:counters`,
      `${stream}:versions`,
      `${stream}:held`,
      1000,
      WINDOW,
      `${stream}:series:`,
      `${stream}:counts:`,
      ...rates.flatMap((row) => [series, row]),
    );
    written.push(...rates);
    await kept();
    // Trimmed: fewer rows held than were ever written.
    expect(await kept()).toBeLessThan(written.length - WINDOW);
    expect(await redis.hget(`${stream}:versions`, series)).toBe(String(batches * perBatch + rates.length));
  });

  it('takes over a list an earlier analyzer kept (a held count, a counts list), and one whose version went back', async () => {
    const { stream, ids } = await delivered(110);
    const series = 'run_time_ms|pool=old';
    const counts = `${stream}:counts:${series}`;
    // As analyzers before the held record kept it: elements of 10 rows, 10 single rows and 10 rows, their counts in
    // a list, and the rows held in a count moved by every commit.
    const written = Array.from({ length: 30 }, (_, i) => `${i} ${i}`);
    await redis.rpush(`${stream}:series:${series}`, written.slice(0, 10).join('\n'), ...written.slice(10, 20), written.slice(20).join('\n'));
    await redis.rpush(counts, 10, ...Array<number>(10).fill(1), 10);
    await redis.hset(`${stream}:held`, series, 30);
    await redis.hset(`${stream}:versions`, series, 30);
    await redis.sadd(`${stream}:index`, series);
    const append = async (from: number, to: number) => {
      const entries = ids.slice(from, to).map((id, i): [string, EntryEffects] => {
        const at = 100 + from + i;
        written.push(`${at} ${at}`);
        return [id, { counters: ['events', 1], samples: { at, suffix: '', group: 'pool=old', metrics: ['run_time_ms'], values: [String(at)] } }];
      });
      expect(await commitEffects(stream, entries)).toMatchObject({ counted: to });
    };
    // 110 rows: counted from the list once, the front element of 10 dropped, the counts list deleted.
    await append(0, 80);
    expect(await keptRows(stream, series, written)).toBe(100);
    expect(await redis.hget(`${stream}:held`, series)).toBe('100 110');
    expect(await redis.exists(counts)).toBe(0);
    // The versions hash lost the series (its version starts again below the record's): counted from the list again.
    await redis.hdel(`${stream}:versions`, series);
    await append(80, 110);
    expect(await keptRows(stream, series, written)).toBe(110);
    expect(await redis.hget(`${stream}:held`, series)).toBe('110 30');
  });
});
