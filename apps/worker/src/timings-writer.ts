import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { encodeTimingEvent, type TimingEvent } from '@fleet/contracts';
import type { WorkerSettings } from '@fleet/config';
import { WorkerRedis } from './worker-redis.js';
import { WORKER_SETTINGS } from './worker-settings.js';

const MAX_BATCH = 512;

interface Pending {
  fields: string[];
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * Appends timing events to the stream before the attempt's outcome is recorded, so every recorded attempt
 * has its event (at least once). Writes are group-committed: an event waits for the write in flight, then
 * goes with every event that arrived meanwhile in one pipeline, so an idle worker pays one round trip and
 * a busy one a round trip per batch. A write that fails is retried until it succeeds (a retried write may
 * repeat an event; the analyzer counts each task attempt once). Nothing is dropped: while Redis is away the
 * tasks waiting on their events hold their slots, and the worker takes no more work.
 */
@Injectable()
export class TimingsWriter {
  private readonly logger = new Logger(TimingsWriter.name);
  private queue: Pending[] = [];
  private writing: Promise<void> | undefined;

  constructor(
    @Inject(WORKER_SETTINGS) private readonly settings: WorkerSettings,
    private readonly redis: WorkerRedis,
  ) {}

  /** Resolves once the event is in the stream; rejects only if `signal` gives up on it first. */
  write(event: TimingEvent, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const item: Pending = { fields: encodeTimingEvent(event), resolve, reject };
      this.queue.push(item);
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

  /** Writes a batch; returns the events that must be written again. */
  private async writeBatch(batch: Pending[], failures: number): Promise<Pending[]> {
    const pipeline = this.redis.connection.pipeline();
    const key = this.redis.keys.timings;
    for (const p of batch) pipeline.xadd(key, 'MAXLEN', '~', this.settings.timingsMaxLen, '*', ...p.fields);
    try {
      const replies = (await pipeline.exec()) ?? [];
      const again = batch.filter((p, i) => {
        const err = replies[i]?.[0];
        if (!err) p.resolve();
        return Boolean(err);
      });
      if (again.length > 0 && failures % 10 === 0) this.logger.warn(`${again.length} of ${batch.length} timing events refused by Redis; retrying`);
      return again;
    } catch (err) {
      if (failures % 10 === 0) this.logger.warn(`timing events not written (${batch.length}): ${(err as Error).message}; retrying`);
      return batch;
    }
  }
}
