import { Redis } from 'ioredis';
import { isolatedSuite, type PrivateRedis, startRedisServer, waitFor } from '@fleet/testing';
import { faultConfigFiles, jsonPost, statusOf, submitAndComplete, syntheticBatch, waitAllFinished } from './fault-fixtures.js';

const MASTER = 'fleetmaster';

/** `INFO replication` of a server, as a map. */
async function replication(port: number): Promise<Record<string, string>> {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await r.connect();
    return Object.fromEntries(
      (await r.info('replication'))
        .split('\r\n')
        .filter((l) => l.includes(':'))
        .map((l) => l.split(':') as [string, string]),
    );
  } finally {
    r.disconnect();
  }
}

async function sentinelCall(port: number, ...args: string[]): Promise<unknown> {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await r.connect();
    return await r.call('SENTINEL', ...args);
  } finally {
    r.disconnect();
  }
}

describe('Redis Sentinel: the master is killed and a replica promoted', () => {
  const suite = isolatedSuite('sentinel', faultConfigFiles());
  const servers: PrivateRedis[] = [];
  let master: PrivateRedis;
  let replica: PrivateRedis;
  let sentinels: PrivateRedis[];

  beforeAll(async () => {
    // min-replicas-to-write bounds what a failover can lose: the master refuses writes when no replica is
    // within 10 s of it (replication is asynchronous; this is the README's advice, applied here).
    master = await startRedisServer({ extraArgs: ['--min-replicas-to-write', '1', '--min-replicas-max-lag', '10'] });
    servers.push(master);
    replica = await startRedisServer({ extraArgs: ['--replicaof', '127.0.0.1', String(master.port)] });
    servers.push(replica);
    await waitFor(async () => (await replication(replica.port)).master_link_status === 'up', { what: 'the replica to sync' });
    sentinels = [];
    for (let i = 0; i < 3; i++) {
      const s = await startRedisServer({
        sentinel: { masterName: MASTER, masterPort: master.port, quorum: 2, downAfterMs: 1000, failoverTimeoutMs: 5000 },
      });
      servers.push(s);
      sentinels.push(s);
    }
    // A failover needs the sentinels to know each other and the replica (they learn it through the master).
    await waitFor(
      async () => {
        for (const s of sentinels) {
          const fields = (await sentinelCall(s.port, 'MASTER', MASTER)) as string[];
          const info = Object.fromEntries(fields.flatMap((v, i) => (i % 2 === 0 ? [[v, fields[i + 1]]] : [])));
          if (Number(info['num-other-sentinels']) < 2 || Number(info['num-slaves']) < 1) return false;
        }
        return true;
      },
      { what: 'three sentinels that know each other and the replica', timeoutMs: 30_000, intervalMs: 200 },
    );
  });

  afterAll(async () => {
    for (const s of servers.reverse()) await s.stop('SIGKILL');
  });

  it('the coordinator and workers follow the promoted replica within a bounded time, and work goes on', async () => {
    const url = `redis+sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${MASTER}`;
    const coordinator = await suite.service('coordinator', { REDIS_URL: url });
    suite.worker({ pool: 'cpu', env: { REDIS_URL: url } });
    suite.worker({ pool: 'cpu', env: { REDIS_URL: url } });

    const before = await submitAndComplete(coordinator, 20, { duration_ms: 20 });
    // What the master acknowledged has reached the replica before the failure is injected.
    await waitFor(async () => (await replication(master.port)).slave0?.includes(`offset=${(await replication(master.port)).master_repl_offset}`), {
      what: 'the replica to catch up',
    });

    const killedAt = Date.now();
    await master.kill('SIGKILL');
    await waitFor(async () => ((await sentinelCall(sentinels[0].port, 'get-master-addr-by-name', MASTER)) as string[])[1] === String(replica.port), {
      what: 'the sentinels to promote the replica',
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    const promotedMs = Date.now() - killedAt;

    // A client retries a refused submission with the same idempotency keys: nothing runs twice.
    const batch = syntheticBatch(20, { duration_ms: 20 }, {});
    batch.tasks.forEach((t, i) => Object.assign(t, { idempotency_key: `after-${i}` }));
    const ids = await waitFor(
      async () => {
        const res = await fetch(`${coordinator.url}/tasks/batch`, { ...jsonPost(batch), signal: AbortSignal.timeout(5000) }).catch(() => undefined);
        return res?.status === 201 ? ((await res.json()) as { ids: string[] }).ids : undefined;
      },
      { what: 'the coordinator to accept work on the new master', timeoutMs: 30_000, intervalMs: 200 },
    );
    const acceptedMs = Date.now() - killedAt;
    expect(await waitAllFinished(coordinator, ids, 30_000)).toEqual({ completed: 20 });
    // Tasks that completed before the failure are still there, completed, on the promoted master.
    expect(await waitAllFinished(coordinator, before)).toEqual({ completed: 20 });
    expect(await statusOf(`${coordinator.url}/health/ready`)).toBe(200);
    process.stdout.write(`sentinel failover: replica promoted ${promotedMs} ms after the kill; work accepted again after ${acceptedMs} ms\n`);
    expect(acceptedMs).toBeLessThan(30_000);
  });
});
