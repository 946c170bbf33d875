import type { Redis } from 'ioredis';
import type { FleetKeys } from './keys.js';

/** A live worker as it describes itself in its heartbeat. */
export interface WorkerRecord {
  id: string;
  pool: string;
  host: string;
  pid: number;
  capabilities: string[];
  concurrency: number;
  status: 'running' | 'draining';
  started_at: number;
  last_heartbeat: number;
  /** Ids of the tasks it holds, as of its last heartbeat. */
  current_tasks: string[];
  completed: number;
  failed: number;
}

/**
 * The fleet's list of live workers. Each worker owns a hash that expires unless its heartbeat renews it,
 * so a dead worker disappears by itself; the index is pruned of such ids whenever it is read.
 */
export class WorkerRegistry {
  constructor(
    private readonly redis: Redis,
    private readonly keys: FleetKeys,
  ) {}

  async beat(record: WorkerRecord, ttlMs: number): Promise<void> {
    const key = this.keys.worker(record.id);
    await this.redis
      .multi()
      .hset(key, {
        id: record.id,
        pool: record.pool,
        host: record.host,
        pid: String(record.pid),
        capabilities: JSON.stringify(record.capabilities),
        concurrency: String(record.concurrency),
        status: record.status,
        started_at: String(record.started_at),
        last_heartbeat: String(record.last_heartbeat),
        current_tasks: JSON.stringify(record.current_tasks),
        completed: String(record.completed),
        failed: String(record.failed),
      })
      .pexpire(key, ttlMs)
      .zadd(this.keys.workerIndex, record.last_heartbeat, record.id)
      .exec();
  }

  async remove(workerId: string): Promise<void> {
    await this.redis.multi().del(this.keys.worker(workerId)).zrem(this.keys.workerIndex, workerId).exec();
  }

  async list(): Promise<WorkerRecord[]> {
    const ids = await this.redis.zrange(this.keys.workerIndex, 0, -1);
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.keys.worker(id));
    const replies = (await pipeline.exec()) ?? [];
    const live: WorkerRecord[] = [];
    const gone: string[] = [];
    replies.forEach(([err, hash], i) => {
      const record = err ? undefined : parseRecord(hash as Record<string, string>);
      if (record) live.push(record);
      else gone.push(ids[i]);
    });
    if (gone.length > 0) await this.redis.zrem(this.keys.workerIndex, ...gone);
    return live.sort((a, b) => a.pool.localeCompare(b.pool) || a.id.localeCompare(b.id));
  }
}

function parseRecord(h: Record<string, string>): WorkerRecord | undefined {
  if (!h.id || !h.pool) return undefined;
  const json = <T>(s: string | undefined, fallback: T): T => {
    try {
      return s ? (JSON.parse(s) as T) : fallback;
    } catch {
      return fallback;
    }
  };
  return {
    id: h.id,
    pool: h.pool,
    host: h.host ?? '',
    pid: Number(h.pid),
    capabilities: json<string[]>(h.capabilities, []),
    concurrency: Number(h.concurrency),
    status: h.status === 'draining' ? 'draining' : 'running',
    started_at: Number(h.started_at),
    last_heartbeat: Number(h.last_heartbeat),
    current_tasks: json<string[]>(h.current_tasks, []),
    completed: Number(h.completed ?? 0),
    failed: Number(h.failed ?? 0),
  };
}
