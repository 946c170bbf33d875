import type { Redis } from 'ioredis';
import { cleanupPrefix, testRedis, uniquePrefix } from '@fleet/testing';
import { COMMIT_BATCH } from '../src/analyzer-scripts.js';

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
    const batch = entries.map(([id, member]) => [id, 'b', member, '', 0, ['events', 1], [`s-${member}`, `1 ${member.length}`]]);
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
      JSON.stringify(batch),
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
});
