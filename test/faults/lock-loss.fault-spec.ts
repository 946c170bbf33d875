import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeTimingEvent } from '@fleet/contracts';
import { cpuTemplate, describeProcesses, isAlive, isolatedSuite, pidIn, waitFor } from '@fleet/testing';

/** A test that logs `<ms> <pid> <worker> start|tick|end` to ticks.log every 50 ms for 4 s. */
const TICKER = [
  "import { appendFileSync } from 'node:fs';",
  "const log = (what) => appendFileSync('ticks.log', `${Date.now()} ${process.pid} ${process.env.FLEET_WORKER_ID} ${what}\\n`);",
  "log('start');",
  'const end = Date.now() + 4000;',
  "const t = setInterval(() => { if (Date.now() >= end) { clearInterval(t); log('end'); } else log('tick'); }, 50);",
].join('\n');

const LOCK = { WORKER_LOCK_MS: '3000', WORKER_STALLED_INTERVAL_MS: '500' };

describe('a worker that stops answering while its test runs (SIGSTOP: a long pause, a stopped process)', () => {
  const suite = isolatedSuite('lockloss', {
    'worker_templates.json': {
      cpu: cpuTemplate({ concurrency: 1, runners: { test: { '.mjs': ['node', '{test_file}'] } } }),
      solo: cpuTemplate({ concurrency: 1, capabilities: ['SOLO'], runners: { test: { '.mjs': ['node', '{test_file}'] } } }),
    },
    'ticker.mjs': TICKER,
    'hangs-once.mjs': [
      "import { existsSync, writeFileSync } from 'node:fs';",
      "if (!existsSync('hang.pid')) { writeFileSync('hang.pid', String(process.pid)); setInterval(() => {}, 1000); }",
    ].join('\n'),
  });
  const lines = () =>
    readFileSync(join(suite.config.path, 'ticks.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => {
        const [at, pid, worker, what] = l.split(' ');
        return { at: Number(at), pid: Number(pid), worker: worker, what: what };
      });

  it("has its test's processes ended by its guard before another worker may start the task; the two runs never overlap, and the paused one records nothing", async () => {
    const paused = suite.worker({ pool: 'cpu', id: 'paused', env: LOCK });
    const [id] = await suite.queue('cpu').add({ type: 'test', name: 'ticker', config: { test_file: 'ticker.mjs' } });
    const first = await waitFor(() => lines().find((l) => l.what === 'start' && l.worker === 'paused'), {
      what: 'the paused worker to start the test',
    });
    suite.worker({ pool: 'cpu', id: 'other', env: LOCK });
    paused.child.kill('SIGSTOP');
    try {
      const second = await waitFor(() => lines().find((l) => l.what === 'start' && l.worker === 'other'), {
        what: 'the other worker to start the task once the lock has expired',
        timeoutMs: 30_000,
      });
      expect(isAlive(first.pid)).toBe(false);
      const lastOfFirst = Math.max(
        ...lines()
          .filter((l) => l.pid === first.pid)
          .map((l) => l.at),
      );
      expect(lastOfFirst).toBeLessThan(second.at);
    } finally {
      paused.child.kill('SIGCONT');
    }
    const done = await waitFor(
      async () => {
        const j = await suite.queue('cpu').job(id);
        return j?.state === 'completed' ? j : undefined;
      },
      { what: 'the task to complete on the other worker', timeoutMs: 30_000 },
    );
    expect(done.job.returnvalue?.worker_id).toBe('other');
    // The resumed worker goes on working, and writes nothing for the attempt it lost.
    await waitFor(() => /lock of task .* lost/.test(paused.output()), { what: 'the resumed worker to notice its lost lock' });
    const events = (await suite.redis.xrange(suite.keys.timings, '-', '+'))
      .map(([, f]) => decodeTimingEvent(f))
      .flatMap((r) => (r.ok ? [r.event] : []));
    expect(events.filter((e) => e.task_id === id).map((e) => [e.worker_id, e.outcome])).toEqual([['other', 'completed']]);
    expect(isAlive(paused.pid)).toBe(true);
  });

  it('a worker paused right after a lock renewal, past the point it gives the attempt up but before the lock expires, hands the task back: it runs again and completes once', async () => {
    // The first run of the test hangs (until its guard ends it); later runs pass at once.
    const lock = { WORKER_LOCK_MS: '10000', WORKER_STALLED_INTERVAL_MS: '1000' };
    const worker = suite.worker({ pool: 'solo', id: 'renewed', env: lock });
    const [id] = await suite.queue('solo').add({ type: 'test', name: 'hangs once', config: { test_file: 'hangs-once.mjs' }, max_attempts: 1 });
    const lockKey = `${suite.keys.queuePrefix('solo')}:solo:${id}:lock`;
    const pid = await waitFor(() => pidIn(join(suite.config.path, 'hang.pid')), {
      what: 'the first run to start',
    });
    // Right after a renewal (the lock's time to live back near its full 10 s), stop the worker.
    let last = await suite.redis.pttl(lockKey);
    await waitFor(
      async () => {
        const ttl = await suite.redis.pttl(lockKey);
        const renewed = ttl > last + 1000;
        last = ttl;
        return renewed;
      },
      { what: 'a lock renewal', timeoutMs: 20_000, intervalMs: 5 },
    );
    worker.child.kill('SIGSTOP');
    try {
      // Past 4/5 of the lock its guard ends the test's processes: the worker has given the attempt up.
      await waitFor(() => !isAlive(pid), { what: "the guard to end the paused attempt's test", timeoutMs: 15_000, intervalMs: 20 }).catch(
        (err: Error) => {
          // What was there when the guard did not act: the test's process, the worker and its guard, and what the worker last said.
          throw new Error(`${err.message}\n${describeProcesses([pid, worker.pid])}\nworker output (end):\n${worker.output().slice(-3000)}`);
        },
      );
      // The window the defect lives in: the lock is still this worker's when it resumes.
      expect(await suite.redis.pttl(lockKey)).toBeGreaterThan(0);
    } finally {
      worker.child.kill('SIGCONT');
    }
    const done = await waitFor(
      async () => {
        const j = await suite.queue('solo').job(id);
        return j?.state === 'completed' || j?.state === 'failed' ? j : undefined;
      },
      { what: 'the task to end', timeoutMs: 60_000 },
    );
    expect(done.state).toBe('completed');
    const events = (await suite.redis.xrange(suite.keys.timings, '-', '+'))
      .map(([, f]) => decodeTimingEvent(f))
      .flatMap((r) => (r.ok ? [r.event] : []))
      .filter((e) => e.task_id === id);
    expect(events.map((e) => e.outcome)).toEqual(['completed']);
  });
});
