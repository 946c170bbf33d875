import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { isCiQueue } from '@fleet/contracts';
import type { FleetKeys } from '@fleet/redis';

/** How many builds' queues stay open at once (a Queue on the shared connection is a small object). */
const MAX_CI_QUEUES = 2000;

/**
 * The BullMQ queues a coordinator writes to and reads: one per configured pool, opened at start, and one per
 * CI build's run (`ci-<run id>`, see `ciQueueName`), opened when first named. All share one connection.
 */
export class QueueSet {
  private readonly pools = new Map<string, Queue>();
  private readonly builds = new LRUCache<string, Queue>({ max: MAX_CI_QUEUES, dispose: (q) => void q.close().catch(() => undefined) });

  constructor(
    private readonly redis: Redis,
    private readonly keys: FleetKeys,
    names: readonly string[],
  ) {
    for (const name of names) this.pools.set(name, this.open(name));
  }

  private open(name: string): Queue {
    return new Queue(name, { connection: this.redis, prefix: this.keys.queuePrefix(name) });
  }

  /** The configured pools' queues. */
  configured(): Queue[] {
    return [...this.pools.values()];
  }

  get names(): string[] {
    return [...this.pools.keys()];
  }

  /** Whether `name` is a configured pool or a build's queue. */
  has(name: string): boolean {
    return this.pools.has(name) || isCiQueue(name);
  }

  /** The queue of a configured pool or of a build's run; undefined for any other name. */
  find(name: string): Queue | undefined {
    const pool = this.pools.get(name);
    if (pool || !isCiQueue(name)) return pool;
    let q = this.builds.get(name);
    if (!q) this.builds.set(name, (q = this.open(name)));
    return q;
  }

  get(name: string): Queue {
    const q = this.find(name);
    if (!q) throw new Error(`no queue for pool ${name}`);
    return q;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.pools.values()].map((q) => q.close()));
    this.builds.clear();
  }
}
