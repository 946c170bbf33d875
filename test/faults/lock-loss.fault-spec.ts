import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeTimingEvent } from '@fleet/contracts';
import { cpuTemplate, isAlive, isolatedSuite, waitFor } from '@fleet/testing';

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
    'worker_templates.json': { cpu: cpuTemplate({ concurrency: 1, runners: { test: { '.mjs': ['node', '{test_file}'] } } }) },
    'ticker.mjs': TICKER,
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
});
