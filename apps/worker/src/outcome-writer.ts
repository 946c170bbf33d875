import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { addOutcome, defineRecordAttempt } from '@fleet/redis';
import { type WorkerSettings, WORKER_SETTINGS } from './worker-settings.js';
import type { AttemptOutcome } from '@fleet/runs';
import { WorkerRedis } from './worker-redis.js';

const MAX_BATCH = 512;

interface Pending {
  outcome: AttemptOutcome;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * Writes each finished attempt's outcome (its timing event, and its record in its run) before the attempt's
 * outcome is recorded in BullMQ, so no recorded attempt lacks them (at least once). Writes are group-committed:
 * an outcome waits for the write in flight, then goes with every outcome that arrived meanwhile in one
 * pipeline, so an idle worker pays one round trip and a busy one a round trip per batch. A write that fails is
 * retried until it succeeds (a retried write may repeat an event; the analyzer counts each task attempt once,
 * and a run keeps one record per attempt). Nothing is dropped: while Redis is away the tasks waiting on their
 * outcomes hold their slots, and the worker takes no more work.
 */
@Injectable()
export class OutcomeWriter {
  private readonly logger = new Logger(OutcomeWriter.name);
  private queue: Pending[] = [];
  private writing: Promise<void> | undefined;
  private readonly redis: Redis;

  constructor(
    @Inject(WORKER_SETTINGS) private readonly settings: WorkerSettings,
    private readonly worker: WorkerRedis,
  ) {
    this.redis = worker.connection;
    defineRecordAttempt(this.redis);
  }

  /** Resolves once the outcome is in Redis; rejects only if `signal` gives up on it first. */
  write(outcome: AttemptOutcome, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ outcome, resolve, reject });
      signal?.addEventListener('abort', () => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted')), { once: true });
      this.writing ??= this.drain().finally(() => (this.writing = undefined));
    });
  }

  /** Resolves when nothing is waiting to be written. */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
  }

  private async drain(): Promise<void> {
    // Let every attempt that finished in this turn of the event loop join the first batch.
    await new Promise((r) => setImmediate(r));
    while (this.queue.length > 0) {
      let batch = this.queue.splice(0, MAX_BATCH);
      for (let failures = 0; batch.length > 0; failures++) {
        if (failures > 0) await sleep(Math.min(100 * 2 ** (failures - 1), 2000));
        batch = await this.writeBatch(batch, failures);
      }
    }
  }

  /** Writes a batch; returns the outcomes that must be written again. */
  private async writeBatch(batch: Pending[], failures: number): Promise<Pending[]> {
    const pipeline = this.redis.pipeline();
    const commands = batch.map((p) => addOutcome(pipeline, this.worker.keys, this.settings.timingsMaxLen, p.outcome));
    try {
      const replies = (await pipeline.exec()) ?? [];
      let at = 0;
      const again = batch.filter((p, i) => {
        const n = commands[i];
        const failed = replies.slice(at, at + n).some(([err]) => err);
        at += n;
        if (!failed) p.resolve();
        return failed;
      });
      if (again.length > 0 && failures % 10 === 0) this.logger.warn(`${again.length} of ${batch.length} outcomes refused by Redis; retrying`);
      return again;
    } catch (err) {
      if (failures % 10 === 0) this.logger.warn(`outcomes not written (${batch.length}): ${(err as Error).message}; retrying`);
      return batch;
    }
  }
}
