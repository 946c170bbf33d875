import type { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRedis } from './connection.js';

/** How long one blocking read waits before it looks at `stopped` again. */
const BLOCK_MS = 5000;

export type StreamEntries = Array<[id: string, fields: string[]]>;

/**
 * Follows streams from now on, each on a blocking connection of its own (`XREAD BLOCK`), handing each batch of
 * new entries to a handler; the next read waits for the handler. With `newestOnly`, a batch is the first new
 * entry and the read goes on from the stream's newest one (one call however many came: a nudge, not a log).
 * A read that fails (Redis away, or closing) is retried a second later; `stop` ends every loop.
 */
export class StreamFollower {
  private readonly connections: Redis[] = [];
  private readonly loops: Array<Promise<void>> = [];
  private stopped = false;

  constructor(
    private readonly redisUrl: string,
    private readonly logger: Logger,
  ) {}

  follow(key: string, name: string, onEntries: (entries: StreamEntries) => unknown, opts: { count: number; newestOnly?: boolean }): void {
    const connection = createRedis(this.redisUrl, 'queue', name, this.logger);
    this.connections.push(connection);
    this.loops.push(this.loop(connection, key, onEntries, opts));
  }

  private async loop(connection: Redis, key: string, onEntries: (entries: StreamEntries) => unknown, opts: { count: number; newestOnly?: boolean }) {
    let last = '$';
    while (!this.stopped) {
      try {
        const got = await connection.xread('COUNT', opts.count, 'BLOCK', BLOCK_MS, 'STREAMS', key, last);
        const entries = got?.[0]?.[1] ?? [];
        if (entries.length === 0 || this.stopped) continue;
        const newest = opts.newestOnly ? (await connection.xrevrange(key, '+', '-', 'COUNT', 1))[0]?.[0] : undefined;
        last = newest ?? entries.at(-1)?.[0] ?? last;
        await onEntries(entries);
      } catch {
        // The connection logs what went wrong; whoever relies on this has a periodic pass meanwhile.
        if (!this.stopped) await sleep(1000);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const c of this.connections) c.disconnect();
    await Promise.allSettled(this.loops);
  }
}
