import { Job, Queue } from 'bullmq';
import { compactQueuedTask, newTaskId, parseTask, type Task, type TaskResult } from '@fleet/contracts';
import { createRedis, FleetKeys, taskJobOptions } from '@fleet/redis';

/** A pool's queue opened the way the coordinator opens it, for tests that feed workers directly. */
export class TestTaskQueue {
  readonly queue: Queue;
  private readonly redis;

  constructor(
    redisUrl: string,
    prefix: string,
    readonly pool: string,
  ) {
    this.redis = createRedis(redisUrl, 'consumer', 'test-queue');
    this.queue = new Queue(pool, { connection: this.redis, prefix: new FleetKeys(prefix).queuePrefix(pool) });
    // A suite that stops its Redis on purpose makes the connection fail until it is back: the connection logs that
    // and reconnects, and every call still rejects on its own. Without a listener BullMQ prints each such error
    // with its stack (console.error), which buried the CI log's excerpt.
    this.queue.on('error', () => undefined);
  }

  /** Validates and queues tasks exactly as the coordinator would; returns their ids. */
  async add(...inputs: object[]): Promise<string[]> {
    const tasks = inputs.map((input) => {
      const r = parseTask(input);
      if (!r.ok) throw new Error(`invalid test task: ${JSON.stringify(r.errors)}`);
      return { id: newTaskId(this.pool), task: r.value };
    });
    await this.queue.addBulk(
      tasks.map(({ id, task }) => ({ name: task.type, data: compactQueuedTask(task, 'anonymous'), opts: taskJobOptions(id, task) })),
    );
    return tasks.map((t) => t.id);
  }

  /** Queues a payload as is, bypassing validation: what a buggy or hostile producer could do. */
  async addRaw(data: unknown): Promise<string> {
    const id = newTaskId(this.pool);
    await this.queue.add('synthetic', data, { jobId: id, attempts: 3 });
    return id;
  }

  async job(id: string): Promise<{ job: Job<Task, TaskResult>; state: string } | undefined> {
    const state = await this.queue.getJobState(id); // first: the job read after it is at least as new
    const job = await Job.fromId<Task, TaskResult>(this.queue, id);
    return job ? { job, state } : undefined;
  }

  async close(): Promise<void> {
    await this.queue.close();
    await this.redis.quit();
  }
}
