import { decodeFailure } from '@fleet/contracts';
import { WorkerRegistry } from '@fleet/redis';
import { cpuTemplate, isAlive, isolatedSuite, waitFor } from '@fleet/testing';

describe('a worker process', () => {
  const suite = isolatedSuite('worker', { 'worker_templates.json': { cpu: cpuTemplate({ capabilities: ['CPU', 'AVX2'] }) } });
  const worker = (id: string, concurrency: number) => suite.worker({ pool: 'cpu', id, concurrency });
  const queue = () => suite.queue('cpu');
  const registry = () => new WorkerRegistry(suite.redis, suite.keys);
  const stateOf = async (id: string) => (await queue().job(id))?.state;

  it('registers with a heartbeat that expires when it dies', async () => {
    const w = worker('beating', 1);
    const entry = await waitFor(async () => (await registry().list()).find((r) => r.id === 'beating'), { what: 'the worker to register' });
    expect(entry).toMatchObject({ pool: 'cpu', pid: w.pid, capabilities: ['CPU', 'AVX2'], concurrency: 1, status: 'running', current_tasks: [] });
    w.child.kill('SIGKILL');
    await w.exited;
    await waitFor(async () => !(await registry().list()).some((r) => r.id === 'beating'), { what: 'the entry to expire', timeoutMs: 10_000 });
  });

  it('fails a task with a bad payload and keeps working', async () => {
    const w = worker('sturdy', 2);
    try {
      const bad = await queue().addRaw({ type: 'synthetic', name: 42, config: { duration_ms: -1 } });
      const garbage = await queue().addRaw('not even an object');
      await waitFor(async () => (await stateOf(bad)) === 'failed' && (await stateOf(garbage)) === 'failed', { what: 'both bad payloads to fail' });
      const failure = decodeFailure((await queue().job(bad))?.job.failedReason);
      expect(failure?.reason).toBe('invalid_task');
      expect(failure?.message).toMatch(/name: must be a string/);
      expect(failure?.message).toMatch(/config.duration_ms: must be an integer from 0 to 3600000/);
      expect((await queue().job(bad))?.job.attemptsMade).toBe(1); // not retried: no retry can fix a payload
      const [good] = await queue().add({ type: 'synthetic', name: 'after', config: { duration_ms: 10 } });
      await waitFor(async () => (await stateOf(good)) === 'completed', { what: 'a good task after the bad ones' });
      expect(isAlive(w.pid)).toBe(true);
    } finally {
      await w.stop();
    }
  });

  it('drains on SIGTERM: finishes the tasks it holds, takes no new ones, leaves the registry, exits 0', async () => {
    const w = worker('drainer', 2);
    await waitFor(async () => (await registry().list()).some((r) => r.id === 'drainer'), { what: 'the worker to register' });
    const ids = await queue().add(...Array.from({ length: 5 }, (_, i) => ({ type: 'synthetic', name: `d${i}`, config: { duration_ms: 1500 } })));
    const held = await waitFor(
      async () => {
        const active = (await Promise.all(ids.map(async (id) => ((await stateOf(id)) === 'active' ? id : undefined)))).filter(Boolean);
        return active.length === 2 ? active : undefined;
      },
      { what: 'the worker to hold two tasks' },
    );
    const status = await w.stop('SIGTERM');
    expect(status).toEqual({ code: 0, signal: null });
    for (const id of ids) expect(await stateOf(id)).toBe(held.includes(id) ? 'completed' : 'prioritized');
    expect((await registry().list()).some((r) => r.id === 'drainer')).toBe(false);
    expect(w.output()).toMatch(/draining 2 held task\(s\)/);
  });
});
