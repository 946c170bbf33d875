// What reading a pre-filled timings stream costs before the analyzer does anything with it, as the baselines
// of the ingest rows: bare XRANGE pages (the yardstick), and a bare consumer-group reader doing the least
// an exactly-once consumer must (XREADGROUP, JSON.parse of each event, XACK), its next read pipelined ahead of its
// processing as the analyzer's is. One pass each, as the analyzer gets one from a fresh process: repeated passes
// run faster once V8 has optimised the reply parser (a third pass read more than twice the first's events a second here).
import type { Redis } from 'ioredis';

export interface StreamFloor {
  /** Events a second, bare XRANGE pages of 1,000. */
  xrange: number;
  /** Events a second, a bare group consumer (XREADGROUP of 1,000, JSON.parse, XACK). */
  consumer: number;
}

const PAGE = 1000;

export async function streamFloor(redis: Redis, key: string): Promise<StreamFloor> {
  return { xrange: await xrangePass(redis, key), consumer: await consumerPass(redis, key, 'floor') };
}

async function xrangePass(redis: Redis, key: string): Promise<number> {
  const t0 = performance.now();
  let read = 0;
  for (let from = '-'; ;) {
    const rows = await redis.xrange(key, from, '+', 'COUNT', PAGE);
    read += rows.length;
    if (rows.length < PAGE) break;
    from = `(${(rows.at(-1) as [string, string[]])[0]}`;
  }
  return read / ((performance.now() - t0) / 1000);
}

type Entries = Array<[string, string[]]>;

async function consumerPass(redis: Redis, key: string, group: string): Promise<number> {
  await redis.xgroup('CREATE', key, group, '0');
  const next = async (): Promise<Entries> => {
    const reply = (await redis.xreadgroup('GROUP', group, 'c', 'COUNT', PAGE, 'STREAMS', key, '>')) as Array<[string, Entries]> | null;
    return reply?.[0]?.[1] ?? [];
  };
  try {
    const t0 = performance.now();
    let read = 0;
    let ahead = next();
    let acking: Promise<unknown> = Promise.resolve();
    for (;;) {
      const rows = await ahead;
      if (rows.length === 0) break;
      ahead = next();
      const ids: string[] = [];
      for (const [id, fields] of rows) {
        JSON.parse(fields[fields.indexOf('e') + 1] ?? 'null');
        ids.push(id);
      }
      await acking;
      acking = redis.xack(key, group, ...ids);
      read += rows.length;
    }
    await acking;
    return read / ((performance.now() - t0) / 1000);
  } finally {
    await redis.xgroup('DESTROY', key, group);
  }
}
