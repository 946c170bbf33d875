import type { Redis } from 'ioredis';
import { cleanupPrefix, testRedis, uniquePrefix } from '@fleet/testing';
import { COMMIT_BATCH } from '../src/analyzer-scripts.js';
import { CommitBatch, type EntryEffects } from '../src/analyzer.repository.js';
import { parseSampleRow, rowSuffix, sampleRow } from '../src/event-samples.js';

/**
 * The analyzer's commit script on a real Redis: an entry is applied once, by the analyzer it is pending for,
 * and a (task, attempt) counted before is a duplicate; whether the script asks once for the batch (XPENDING) or
 * entry by entry (XACK), the answers are the same.
 */
describe('the analyzer commit script', () => {
  let redis: Redis;
  const prefix = uniquePrefix('commit');
  const k = (name: string) => `${prefix}:${name}`;
  let n = 0;

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

  /** Commits entries (id, identity member) as consumer `c`; returns the events counter and each entry's status. */
  async function commit(stream: string, entries: Array<[string, string]>): Promise<{ counted: number; statuses: number[] }> {
    return commitEffects(
      stream,
      entries.map(([id, member]) => [
        id,
        {
          identity: { bucket: 'b', member },
          counters: ['events', 1],
          samples: { at: 1, suffix: '', group: `s-${member}`, metrics: ['m'], values: [String(member.length)] },
        },
      ]),
    );
  }

  async function commitEffects(stream: string, entries: Array<[string, EntryEffects]>): Promise<{ counted: number; statuses: number[] }> {
    const batch = new CommitBatch();
    for (const [id, effects] of entries) batch.add(id, effects);
    const reply = (await redis.eval(
      COMMIT_BATCH,
      5,
      stream,
      `${stream}:counters`,
      `${stream}:index`,
      `${stream}:durations`,
      `${stream}:versions`,
      'g',
      `${stream}:series:`,
      `${stream}:seen:`,
      60,
      100,
      1000,
      batch.toJSON(),
      'c',
    )) as number[];
    const [counted, ...statuses] = reply;
    return { counted, statuses };
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
    // Read again (a crash after the commit): nothing changes.
    expect(await commit(stream, [[ids[0], 'task-a#1']])).toEqual({ counted: 2, statuses: [0] });
  });

  it('leaves an entry another analyzer claimed to that analyzer', async () => {
    const { stream, ids } = await delivered(2);
    await redis.xclaim(stream, 'g', 'other', 0, ids[1]);
    expect(
      await commit(stream, [
        [ids[0], 'task-c#1'],
        [ids[1], 'task-d#1'],
      ]),
    ).toEqual({ counted: 1, statuses: [1, 0] });
    expect(await pendingFor(stream, 'other')).toEqual([ids[1]]);
  });

  it('gives the same answers entry by entry when its pending range holds more entries than it asks for', async () => {
    // 30 entries pending for c; a batch of the first and the last spans all 30, more than the script's limit
    // for a batch of two, so it acknowledges entry by entry; the 28 between stay pending.
    const { stream, ids } = await delivered(30);
    expect(
      await commit(stream, [
        [ids[0], 'task-e#1'],
        [ids[29], 'task-e#1'],
      ]),
    ).toEqual({ counted: 1, statuses: [1, 2] });
    expect(await pendingFor(stream, 'c')).toEqual(ids.slice(1, 29));
  });

  it('writes each sample as sampleRow does, under its series, and adds up counters and durations over the batch', async () => {
    const { stream, ids } = await delivered(3);
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
            counters: ['events', 1, 'run_ms:cpu', 250],
            samples: samples('t1', ['250', '0.30000000000000004']),
          },
        ],
        [ids[1], { counters: ['malformed', 1] }],
        [
          ids[2],
          {
            identity: { bucket: 'b', member: 'odd "task" [1]#2' },
            duration: { key: 'cpu|tests/a.py', ms: 100 },
            counters: ['events', 1, 'run_ms:cpu', 100],
            samples: samples('odd "task" [1]', ['1e+21']),
          },
        ],
      ]),
    ).toEqual({ counted: 2, statuses: [1, 1, 1] });
    const rows = await redis.lrange(`${stream}:series:run_time_ms|pool=cpu`, 0, -1);
    expect(rows).toEqual([
      sampleRow({ series: '', at: 1750, value: 250, task_id: 't1', labels }),
      sampleRow({ series: '', at: 1750, value: 1e21, task_id: 'odd "task" [1]', labels }),
    ]);
    expect(rows.map((r) => parseSampleRow(r).task_id)).toEqual(['t1', 'odd "task" [1]']);
    expect(await redis.lrange(`${stream}:series:latency_ms|pool=cpu`, 0, -1)).toEqual([
      sampleRow({ series: '', at: 1750, value: 0.30000000000000004, task_id: 't1', labels }),
    ]);
    expect(await redis.hgetall(`${stream}:counters`)).toEqual({ events: '2', malformed: '1', 'run_ms:cpu': '350' });
    expect(await redis.hget(`${stream}:durations`, 'cpu|tests/a.py')).toBe('100');
    expect(await redis.hgetall(`${stream}:versions`)).toEqual({ 'run_time_ms|pool=cpu': '2', 'latency_ms|pool=cpu': '1' });
  });
});
