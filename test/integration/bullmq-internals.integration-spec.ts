import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FlowProducer, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  addToTransaction,
  BULLMQ_WRITTEN_FOR,
  createRedis,
  defineInsertScripts,
  delayedScoreDueBy,
  loadInsertScripts,
  NOT_YET_PICKED_SETS,
  queueTransaction,
  waitUntilReady,
} from '@fleet/redis';
import { isolatedSuite } from '@fleet/testing';

// The fleet's every use of BullMQ's undocumented surface (libs/redis/src/bullmq-internals.ts), each checked
// against a real Redis: a BullMQ upgrade that changes one of them fails here, not in production.
describe('BullMQ internals the fleet relies on', () => {
  // A private Redis: one test flushes the script cache, which would hurt suites sharing a server.
  const suite = isolatedSuite('bullmq-int', {}, { privateRedis: {} });
  const pool = 'p';
  let redis: Redis;
  let queue: Queue;
  const job = (id: string, opts: object = {}) => ({ id, name: 'synthetic', data: { n: id }, opts });

  beforeAll(async () => {
    redis = createRedis(suite.redisUrl, 'producer', 'bullmq-internals-spec');
    queue = new Queue(pool, { connection: redis, prefix: suite.keys.queuePrefix(pool) });
    await queue.waitUntilReady();
    suite.onCleanup(async () => {
      await queue.close();
      await redis.quit();
    });
  });

  it('are checked against the BullMQ minor version they were written for', () => {
    const installed = (JSON.parse(readFileSync(join(process.cwd(), 'node_modules/bullmq/package.json'), 'utf8')) as { version: string }).version;
    expect(installed.split('.').slice(0, 2).join('.')).toBe(BULLMQ_WRITTEN_FOR);
    const pinned = (JSON.parse(readFileSync(join(process.cwd(), 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies
      .bullmq;
    expect(pinned).toBe(`~${BULLMQ_WRITTEN_FOR}.0`);
  });

  it('queue jobs in one transaction with other commands, all of it or none of it, on a connection with the insert scripts alone', async () => {
    await loadInsertScripts(redis);
    const inserts = createRedis(suite.redisUrl, 'producer', 'bullmq-internals-inserts');
    suite.onCleanup(() => inserts.quit());
    await waitUntilReady(inserts, suite.redisUrl);
    const names = defineInsertScripts(redis, inserts);
    // BullMQ's insert scripts and no other (a MULTI copies each script of its connection).
    const defined = Object.keys((inserts as unknown as { scriptsSet: Record<string, unknown> }).scriptsSet);
    expect(defined.sort()).toEqual([...names].sort());
    expect(defined.length).toBeLessThan(Object.keys((redis as unknown as { scriptsSet: Record<string, unknown> }).scriptsSet).length);

    const claim = `${suite.prefix}:claim`;
    const multi = queueTransaction(inserts);
    multi.set(claim, 'a', 'NX', 'GET');
    await Promise.all([
      addToTransaction(queue, multi, job('a', { priority: 3 })),
      addToTransaction(queue, multi, job('b', { delay: 60_000 })),
      addToTransaction(queue, multi, job('s')),
    ]);
    // Nothing is queued before the transaction runs.
    expect(await queue.getJobState('a')).toBe('unknown');
    const replies = await multi.exec();
    expect(replies?.every(([err]) => err === null)).toBe(true);
    expect(await queue.getJobState('a')).toBe('prioritized');
    expect(await queue.getJobState('b')).toBe('delayed');
    expect(await queue.getJobState('s')).toBe('waiting');
    expect((await queue.getJob('a'))?.data).toEqual({ n: 'a' });
    expect(await redis.get(claim)).toBe('a');

    // A transaction that does not run (a watched key changed) queues nothing and sets nothing.
    await inserts.watch(claim);
    const aborted = queueTransaction(inserts);
    aborted.set(`${suite.prefix}:other`, '1');
    await addToTransaction(queue, aborted, job('c'));
    await redis.set(claim, 'changed');
    expect(await aborted.exec()).toBeNull();
    expect(await queue.getJobState('c')).toBe('unknown');
    expect(await redis.exists(`${suite.prefix}:other`)).toBe(0);
  });

  it('have insert scripts by the names the coordinator loads before its transactions', async () => {
    await redis.script('FLUSH');
    const names = await loadInsertScripts(redis);
    const kinds = names.map((n) => n.split(':')[0]);
    // The three kinds the coordinator queues (a plain, a prioritized, a delayed task), and each is in Redis now.
    expect(kinds).toEqual(expect.arrayContaining(['addStandardJob', 'addPrioritizedJob', 'addDelayedJob']));
    const shas = names.map((n) => (redis as unknown as { scriptsSet: Record<string, { sha: string }> }).scriptsSet[n]?.sha);
    expect(await redis.script('EXISTS', ...shas)).toEqual(shas.map(() => 1));
  });

  it('score a delayed job by its due time, so a count of due retries is one ZCOUNT', async () => {
    const delayed = suite.keys.queueKey(pool, 'delayed');
    const due = (by: number) => redis.zcount(delayed, 0, delayedScoreDueBy(by));
    const [now, later] = [await due(Date.now() + 5), await due(Date.now() + 3_700_000)];
    await queue.add('synthetic', {}, { jobId: 'soon', delay: 1 });
    await queue.add('synthetic', {}, { jobId: 'later', delay: 3_600_000 });
    expect(await due(Date.now() - 1_000)).toBeLessThanOrEqual(now);
    expect(await due(Date.now() + 5)).toBe(now + 1);
    expect(await due(Date.now() + 3_700_000)).toBe(later + 2);
  });

  it('keep jobs not yet picked up in the sorted sets the per-client cap looks in', async () => {
    const flows = new FlowProducer({ connection: redis, prefix: suite.keys.queuePrefix(pool) });
    await queue.add('synthetic', {}, { jobId: 'prio', priority: 5 });
    await queue.add('synthetic', {}, { jobId: 'delay', delay: 60_000 });
    await flows.add({
      name: 'parent',
      queueName: pool,
      opts: { jobId: 'parent' },
      children: [{ name: 'child', queueName: pool, opts: { jobId: 'child' } }],
    });
    const member = (set: (typeof NOT_YET_PICKED_SETS)[number], id: string) => redis.zscore(suite.keys.queueKey(pool, set), id);
    expect(await member('prioritized', 'prio')).not.toBeNull();
    expect(await member('delayed', 'delay')).not.toBeNull();
    expect(await member('waiting-children', 'parent')).not.toBeNull();
    await flows.close();
  });
});
