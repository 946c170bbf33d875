import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { FieldErrorsException } from '@fleet/app';
import type { FleetKeys, Transaction } from '@fleet/redis';
import type { BatchEntry, Claim, QueueTransactions } from './queue-transactions.js';

/** A batch over spread pools, recorded before its parts are queued. */
export interface PendingBatch {
  client: string;
  /** When it was recorded (ms, the coordinator's clock). */
  at: number;
  entries: BatchEntry[];
}

/** How often, at most, a coordinator looks for pending batches to settle. */
const SETTLE_EVERY_MS = 2000;

/** Items grouped by a key, in order. */
export function groupBy<T>(items: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const t of items) {
    const k = key(t);
    const g = groups.get(k);
    if (g) g.push(t);
    else groups.set(k, [t]);
  }
  return groups;
}

/**
 * A batch over spread pools: a transaction can hold one slot only, so the batch goes in two steps.
 * 1. In the fleet's slot, one MULTI commits the idempotency claims, writes the run's record (`extra`) and
 *    records the whole batch as pending (`pendingBatches`). Refused or lost, it leaves nothing: the client
 *    gets an error and nothing is queued.
 * 2. Each pool's part is queued in a MULTI of its own slot, with a mark that it was (`batchPart`); then the
 *    pending record goes. A failure here (a shard refusing writes, this coordinator dying) leaves the record:
 *    every coordinator settles records older than `PENDING_SETTLE_MS` by queueing the parts not yet marked,
 *    and a request that meets a key whose task is still pending settles it at once. So a recorded batch is
 *    queued whole, each task once, and a key always names a task that is (or is about to be) queued.
 */
export class SpreadBatches {
  private readonly logger = new Logger(SpreadBatches.name);
  private lastSettle = 0;

  constructor(
    private readonly redis: Redis,
    private readonly keys: FleetKeys,
    private readonly tx: QueueTransactions,
    private readonly hasPool: (pool: string) => boolean,
    private readonly claimTtlS: number,
  ) {}

  /** Both steps (the claims are this request's pending ones, committed in step 1). */
  async queue(batchId: string, entries: BatchEntry[], claims: readonly Claim[], client: string, extra?: (m: Transaction) => void): Promise<void> {
    const batch = await this.record(batchId, entries, claims, client, extra);
    try {
      await this.queueParts(batchId, batch, () => true);
    } catch (err) {
      this.logger.warn(`batch ${batchId} recorded, not yet queued whole (settled later): ${(err as Error).message}`);
      const e = new FieldErrorsException(503, [
        {
          field: 'tasks',
          reason: `the batch is recorded (${batchId}) but a pool's Redis shard refused its part (${(err as Error).message}); it will be queued whole once the shard takes writes again: retry with the same idempotency keys to learn the tasks' ids`,
        },
      ]);
      throw Object.assign(e, { retryAfterS: 5, recorded: true });
    }
  }

  /** Step 1 (public so a test can stop after it, as a crash would). */
  async record(
    batchId: string,
    entries: BatchEntry[],
    claims: readonly Claim[],
    client: string,
    extra?: (m: Transaction) => void,
  ): Promise<PendingBatch> {
    const keyOf = new Map(claims.map((c) => [c.id, c.key]));
    const batch: PendingBatch = { client, at: Date.now(), entries: entries.map((e) => ({ ...e, ...(keyOf.has(e.id) && { key: keyOf.get(e.id) }) })) };
    const multi = this.tx.plain();
    this.tx.commit(multi, client, claims);
    extra?.(multi);
    multi.hset(this.keys.pendingBatches, batchId, JSON.stringify(batch));
    await this.tx.exec(multi, [], claims);
    return batch;
  }

  /** Step 2: each pool's part not yet marked, in its own slot's MULTI; then the record goes. */
  private async queueParts(batchId: string, batch: PendingBatch, keep: (e: BatchEntry) => boolean): Promise<void> {
    const byPool = groupBy(batch.entries.filter(keep), (e) => e.pool);
    const unknown = [...byPool.keys()].filter((pool) => !this.hasPool(pool));
    // Another coordinator (with that pool in its config) settles it; forgetting the part would lose its tasks.
    if (unknown.length > 0) throw new Error(`pool(s) ${unknown.join(', ')} unknown to this coordinator`);
    await Promise.all(
      [...byPool].map(async ([pool, entries]) => {
        const mark = this.keys.batchPart(pool, batchId);
        // Looked at even on the first pass: a request that met one of the batch's keys may have queued this part
        // already, and its tasks may be done and trimmed by now.
        if ((await this.redis.exists(mark)) === 1) return;
        const multi = this.tx.queueing();
        const queued = entries.map((e) => this.tx.add(multi, e));
        multi.set(mark, '1', 'EX', this.claimTtlS);
        await this.tx.exec(multi, queued);
      }),
    );
    await this.redis.hdel(this.keys.pendingBatches, batchId);
  }

  /**
   * Queues what pending batches still owe: those recorded more than `minAgeMs` ago (their coordinator died or
   * a shard refused them; looked at every SETTLE_EVERY_MS at most), or, with `taskId`, any that holds that
   * task. A task whose key another task holds is skipped, as its coordinator would have. A batch that cannot be
   * settled yet stays for the next pass. Returns how many batches were settled.
   */
  async settle(minAgeMs: number, taskId?: string): Promise<number> {
    if (taskId === undefined) {
      if (Date.now() - this.lastSettle < SETTLE_EVERY_MS) return 0;
      this.lastSettle = Date.now();
    }
    await this.tx.ready();
    let settled = 0;
    for (const [batchId, json] of Object.entries(await this.redis.hgetall(this.keys.pendingBatches))) {
      const batch = JSON.parse(json) as PendingBatch;
      if (taskId !== undefined ? !batch.entries.some((e) => e.id === taskId) : Date.now() - batch.at < minAgeMs) continue;
      try {
        const keyed = batch.entries.filter((e) => e.key !== undefined);
        const holders = keyed.length === 0 ? [] : await this.redis.mget(...keyed.map((e) => this.keys.idempotency(batch.client, e.key as string)));
        const lost = new Set(keyed.filter((e, i) => holders[i] !== e.id).map((e) => e.id));
        await this.queueParts(batchId, batch, (e) => !lost.has(e.id));
        this.logger.log(`pending batch ${batchId} settled (${batch.entries.length - lost.size} task(s) of ${batch.client})`);
        settled++;
      } catch (err) {
        this.logger.warn(`pending batch ${batchId} not settled yet: ${(err as Error).message}`);
        if (taskId !== undefined) throw err;
      }
    }
    return settled;
  }
}
