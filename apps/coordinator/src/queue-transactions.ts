import { Logger } from '@nestjs/common';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  addToTransaction,
  defineInsertScripts,
  type FleetKeys,
  loadInsertScripts,
  queueTransaction,
  type Transaction,
  type TransactionJob,
} from '@fleet/redis';

/** One task as its pool's queue takes it in a transaction. */
export interface BatchEntry extends TransactionJob {
  pool: string;
  /** The idempotency key this task claimed. */
  key?: string;
}

/** An idempotency key a task claims, the task, and the request's pending claim on it (`pendingClaim`). */
export interface Claim {
  key: string;
  id: string;
  pending: string;
}

/**
 * Transactions that queue tasks with the commands that must go with them (idempotency claims, a run's
 * record), all or nothing: Redis runs a MULTI whole or not at all, and AOF replays it whole or not at all.
 */
export class QueueTransactions {
  private readonly logger = new Logger(QueueTransactions.name);
  private scriptsLoaded = false;

  /**
   * @param redis the queues' connection (BullMQ's scripts are defined on it once they are ready)
   * @param inserts a connection of the same Redis for the queueing MULTIs, where `open` defines the insert
   *   scripts alone (see `defineInsertScripts`)
   */
  constructor(
    private readonly redis: Redis,
    private readonly inserts: Redis,
    private readonly keys: FleetKeys,
    private readonly queue: (pool: string) => Queue,
    private readonly claimTtlS: number,
  ) {}

  /** Once the queues are ready: defines BullMQ's insert scripts on the connection for queueing MULTIs. */
  open(): void {
    defineInsertScripts(this.redis, this.inserts);
  }

  /** A MULTI the pool's queue can join (on a cluster, on the node of the pool's slot: the first key it is given). */
  queueing(): Transaction {
    return queueTransaction(this.inserts);
  }

  /** A MULTI on the connection, for commands in the fleet's own slot only. */
  plain(): Transaction {
    return this.redis.multi();
  }

  /**
   * Commits the request's pending claims (see `@fleet/contracts` idempotency) to their tasks, for as long as
   * the tasks are kept; these are the transaction's first commands.
   */
  commit(multi: Transaction, client: string, claims: readonly Claim[]): void {
    const at = Date.now();
    for (const c of claims) multi.set(this.keys.idempotency(client, c.key), c.id, 'EX', this.claimTtlS, 'GET');
    // Indexed for the bound by count (`TaskQueueRepository.trimRecords`).
    for (const c of claims) multi.zadd(this.keys.claims, at, this.keys.idempotency(client, c.key));
  }

  /** Queues a task on the transaction (part of it once the promise resolves; `exec` awaits them first). */
  add(multi: Transaction, e: BatchEntry): Promise<void> {
    return addToTransaction(this.queue(e.pool), multi, e);
  }

  /** Loads BullMQ's insert scripts before the first transaction and after any that failed (see `loadInsertScripts`). */
  async ready(): Promise<void> {
    if (this.scriptsLoaded) return;
    await loadInsertScripts(this.redis);
    this.scriptsLoaded = true;
  }

  /** Runs the transaction; throws if Redis refused any of it. `claims`: those it commits first (`commit`). */
  async exec(multi: Transaction, queued: ReadonlyArray<Promise<void>>, claims: readonly Claim[] = []): Promise<void> {
    try {
      await Promise.all(queued);
      const replies = await multi.exec();
      if (!replies) throw new Error('the queueing transaction was aborted');
      const failed = replies.find(([err]) => err);
      if (failed) throw failed[0] as Error;
      claims.forEach((c, i) => {
        const before = replies[i]?.[1];
        // Only if the request stalled past its pending claim's life and another request took the key meanwhile.
        if (before !== c.pending)
          this.logger.warn(`idempotency key "${c.key}": its pending claim had lapsed (held ${String(before)}) when task ${c.id} was queued`);
      });
    } catch (err) {
      this.scriptsLoaded = false;
      throw err;
    }
  }
}
