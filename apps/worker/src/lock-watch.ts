import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { type WorkerSettings, WORKER_SETTINGS } from './worker-settings.js';
import { ProcessGuard } from './process-guard-client.js';

/** Why an attempt was abandoned: its lock is (or may be) held by no one, or by another worker now. */
export class LockLostError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LockLostError';
  }
}

interface Held {
  /** Until when this worker knows the lock is its own (when the last renewal was sent, plus the lock duration). */
  until: number;
  onLost: (err: LockLostError) => void;
}

/**
 * Knows, for every task this worker runs, until when its BullMQ lock is surely held. A task whose lock is
 * lost (a renewal refused, or none confirmed for too long: a pause, a partition) is abandoned at once, since
 * another worker may start it again. The same deadline, minus a margin, goes to the guard, which ends the
 * task's processes by itself if the worker cannot (stopped, stuck) — before the lock expires.
 */
@Injectable()
export class LockWatch implements OnModuleDestroy {
  private readonly held = new Map<string, Held>();
  private readonly timer: NodeJS.Timeout;
  /** How long before the lock's expiry an unconfirmed task is given up: a fifth of the lock, at least 200 ms. */
  readonly marginMs: number;

  constructor(
    @Inject(WORKER_SETTINGS) private readonly settings: WorkerSettings,
    private readonly guard: ProcessGuard,
  ) {
    this.marginMs = Math.max(200, Math.round(settings.lockMs / 5));
    this.timer = setInterval(() => this.check(), Math.max(50, Math.round(settings.lockMs / 10)));
    this.timer.unref();
    guard.onExpired((key) => this.lost(key, 'its guard ended its processes: the worker did not confirm the lock in time'));
  }

  /** A task starts: its lock was taken at `acquiredAt` (BullMQ's processedOn, set before the lock). */
  begin(jobId: string, acquiredAt: number, onLost: (err: LockLostError) => void): void {
    this.held.set(jobId, { until: acquiredAt + this.settings.lockMs, onLost });
  }

  /** A renewal sent at `sentAt` succeeded. */
  renewed(jobId: string, sentAt: number): void {
    const h = this.held.get(jobId);
    if (!h) return;
    h.until = sentAt + this.settings.lockMs;
    this.guard.deadline(jobId, this.safeUntil(jobId));
  }

  lost(jobId: string, why: string): void {
    const h = this.held.get(jobId);
    if (!h) return;
    this.held.delete(jobId);
    h.onLost(new LockLostError(`lock of task ${jobId} lost: ${why}`));
  }

  end(jobId: string): void {
    this.held.delete(jobId);
  }

  /** Until when the task may safely go on running (Date.now() scale). */
  safeUntil(jobId: string): number {
    return (this.held.get(jobId)?.until ?? Date.now()) - this.marginMs;
  }

  private check(): void {
    const now = Date.now();
    for (const [jobId, h] of this.held) {
      if (now >= h.until - this.marginMs) this.lost(jobId, `no renewal confirmed for ${this.settings.lockMs - this.marginMs} ms`);
    }
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
  }
}
