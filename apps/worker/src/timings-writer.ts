import { Inject, Injectable, Logger } from '@nestjs/common';
import { encodeTimingEvent, type TimingEvent } from '@fleet/contracts';
import type { WorkerSettings } from '@fleet/config';
import { WorkerRedis } from './worker-redis.js';
import { WORKER_SETTINGS } from './worker-settings.js';

const MAX_BATCH = 256;
const MAX_DELAY_MS = 20;
const MAX_PENDING = 50_000;

/**
 * Appends timing events to the capped stream (`XADD … MAXLEN ~`). Events are batched into one
 * pipeline per 20 ms or 256 events, so a busy worker spends one round trip on many tasks.
 */
@Injectable()
export class TimingsWriter {
  private readonly logger = new Logger(TimingsWriter.name);
  private pending: string[][] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private dropped = 0;

  constructor(
    @Inject(WORKER_SETTINGS) private readonly settings: WorkerSettings,
    private readonly redis: WorkerRedis,
  ) {}

  append(event: TimingEvent): void {
    if (this.pending.length >= MAX_PENDING) {
      this.pending.shift();
      if (this.dropped++ % 1000 === 0) this.logger.warn(`Redis is not keeping up: ${this.dropped} timing events dropped so far`);
    }
    this.pending.push(encodeTimingEvent(event));
    if (this.pending.length >= MAX_BATCH) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), MAX_DELAY_MS);
  }

  /** Writes everything appended so far; resolves when it is in Redis. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending;
    this.pending = [];
    this.flushing = this.flushing.then(async () => {
      if (batch.length === 0) return;
      const pipeline = this.redis.connection.pipeline();
      const key = this.redis.keys.timings;
      for (const fields of batch) pipeline.xadd(key, 'MAXLEN', '~', this.settings.timingsMaxLen, '*', ...fields);
      try {
        const replies = (await pipeline.exec()) ?? [];
        const failed = replies.filter(([err]) => err).length;
        if (failed > 0) this.logger.warn(`${failed} of ${batch.length} timing events were refused by Redis`);
      } catch (err) {
        this.logger.warn(`timing events not written (${batch.length}): ${(err as Error).message}`);
      }
    });
    return this.flushing;
  }
}
