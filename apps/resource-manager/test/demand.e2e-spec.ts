import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpuTemplate, isolatedSuite, waitFor } from '@fleet/testing';
import { fastConfig, type ResourceManager, startResourceManager } from './rm-harness.js';

interface DecisionRecord {
  at: number;
  from: number;
  to: number;
  reason: string;
  inputs: { stopped?: string[] };
}

const TICK_S = 0.3;
const WINDOW_S = 2;

describe('DEMAND: the pool follows the work in seconds, wakes without blocking, and scales in only idle workers', () => {
  const suite = isolatedSuite('demand', {
    'worker_templates.json': { work: cpuTemplate({ concurrency: 1 }) },
    // Holds its worker until the test writes `release` (bounded: it gives up after two minutes).
    'hold.test.mjs': [
      "import { existsSync } from 'node:fs';",
      'const until = Date.now() + 120_000;',
      "while (!existsSync('release') && Date.now() < until) await new Promise((r) => setTimeout(r, 50));",
      "if (!existsSync('release')) process.exit(1);",
      '',
    ].join('\n'),
    'resource_manager_config.json': fastConfig({
      min_workers: 0,
      max_workers: 3,
      polling_interval: TICK_S,
      scaling_strategy: 'DEMAND',
      // Cooldowns that would hold the seed's strategies for a minute: DEMAND has none.
      scale_up_cooldown: 60,
      scale_down_cooldown: 60,
      scale_down_stabilization: WINDOW_S,
      worker_startup_buffer: 0.5,
      max_step_up: 1,
      max_step_down: 1,
    }),
  });
  let rm: ResourceManager;
  const decisions = async () =>
    ((await rm.http.get('/decisions?pool=work').expect(200)).body.decisions as DecisionRecord[]).sort((a, b) => a.at - b.at);

  beforeAll(async () => {
    rm = await startResourceManager({ prefix: suite.prefix, configDir: suite.config.path });
    suite.onCleanup(() => rm.stop('SIGKILL'));
  });

  it('a wake-up is followed by a scale-up on the next tick that sees a burst; back to min_workers in one step within a window of the queue emptying; no task is cut short', async () => {
    const queue = suite.queue('work');
    expect((await rm.pool('work')).running).toBe(0);
    const [first] = await queue.add({ type: 'synthetic', name: 'trickle', config: { duration_ms: 1500 } });
    const wake = await waitFor(async () => (await decisions()).find((d) => d.from === 0 && d.to === 1 && /waking/.test(d.reason)), {
      what: 'the pool to wake',
      timeoutMs: 20_000,
    }).catch(async (err: Error) => {
      throw new Error(`${err.message}; decisions: ${JSON.stringify(await decisions())}; pool: ${JSON.stringify(await rm.pool('work'))}`);
    });
    // 24.5 s of work to the policy (a task counts 1 s until the pool has finished one): it wants all 3 workers
    // unless a worker takes more than 12 s to start. With 12 tasks (12.5 s) the bound was 6 s, too near what a
    // loaded CI machine measures.
    const burst = await queue.add(...Array.from({ length: 24 }, (_, i) => ({ type: 'synthetic', name: `burst ${i}`, config: { duration_ms: 350 } })));
    // From here every tick sees the whole burst (its arrivals set ticks off while it was being queued, and those
    // may have seen part of it and grown the pool already).
    const burstAt = Date.now();
    // Every tick that sees the burst wants the pool at max_workers: the wake started no cooldown.
    const seen = await waitFor(
      async () => {
        const v = await rm.pool('work');
        const at = v.last_decision ? Date.parse(v.last_decision.at) : 0;
        return at > burstAt && (v.depth?.waiting ?? 0) > 0 ? v.last_decision : undefined;
      },
      { what: 'a tick that saw the burst', timeoutMs: 20_000, intervalMs: 20 },
    );
    expect(seen).toMatchObject({ desired: 3, reason: expect.stringMatching(/s of work .* idle of \d+, start-up/) });
    // The step after the wake is up, well inside the 60 s scale_up_cooldown a wake-up counted as a scale-up would start.
    // Waited for: the pool's view shows a tick's decision before its record is appended (after the workers start).
    const next = await waitFor(async () => (await decisions()).find((d) => d.at > wake.at), {
      what: 'the decision after the wake to be recorded',
      timeoutMs: 20_000,
      intervalMs: 20,
    }).catch(() => undefined);
    expect(next).toMatchObject({ from: 1, to: expect.any(Number) as number, reason: expect.stringMatching(/s of work/) });
    expect((next?.to ?? 0) > 1 && (next?.at ?? Infinity) - wake.at < 60_000).toBe(true);

    const ids = [first, ...burst];
    await waitFor(async () => (await Promise.all(ids.map(async (id) => (await queue.job(id))?.state))).every((s) => s === 'completed'), {
      what: 'every task to complete',
      timeoutMs: 60_000,
    });
    const emptiedAt = Math.max(...(await Promise.all(ids.map(async (id) => (await queue.job(id))?.job.finishedOn ?? 0))));
    await waitFor(async () => (await rm.pool('work')).running === 0, { what: 'the pool back at min_workers (0)', timeoutMs: 30_000 });
    const all = await decisions();
    const downs = all.filter((d) => d.to < d.from);
    const last = downs.at(-1);
    expect(last).toMatchObject({ to: 0, reason: expect.stringMatching(/the last \d+s needed at most 0: stopping \d+ idle/) });
    // Back at min_workers within one stabilization window (as the decision states it: at least twice the
    // measured start-up) of the last task's end, give or take the ticks it takes to see it.
    const windowMs = Number(/the last (\d+)s/.exec(last?.reason ?? '')?.[1]) * 1000;
    expect((last?.at ?? 0) - emptiedAt).toBeLessThanOrEqual(windowMs + 3 * TICK_S * 1000);
    // Stopped only idle workers, and never started one again within a start-up time of stopping one.
    for (const d of downs) expect(d.reason).toMatch(/stopping \d+ idle/);
    for (const d of downs) expect(all.filter((u) => u.to > u.from && u.at > d.at && u.at - d.at < windowMs / 2)).toEqual([]);
    // No task was cut short by a scale-down: each ran once, to its end.
    for (const id of ids) expect((await queue.job(id))?.job.attemptsStarted).toBe(1);
  });

  it('a scale-down stops only idle workers: the one holding a long task runs it to the end', async () => {
    const queue = suite.queue('work');
    // A task that holds its worker until the test releases it, and a dozen short ones behind it: the pool must
    // grow past the held worker to run them, and once they are done it must stop the idle workers while the held
    // one runs on. Nothing here depends on how fast the machine is: the hold ends when the test says so.
    const release = join(suite.config.path, 'release');
    const long = await queue.add({ type: 'test', name: 'long', config: { test_file: 'hold.test.mjs' } });
    const heldSince = await waitFor(
      async () => {
        const j = await queue.job(long[0]);
        return j?.state === 'active' ? (j.job.processedOn ?? 0) : undefined;
      },
      { what: 'the long task to start', timeoutMs: 30_000 },
    );
    const short = await queue.add(...Array.from({ length: 12 }, (_, i) => ({ type: 'synthetic', name: `short ${i}`, config: { duration_ms: 300 } })));
    const stoppedWhileHeld = await waitFor(
      async () => {
        // Only this test's decisions: the one before it ended with the pool's own scale-in to 0.
        const ds = (await decisions()).filter((d) => d.at > heldSince);
        const grew = ds.some((d) => d.to > 1);
        const allShortDone = (await Promise.all(short.map(async (id) => (await queue.job(id))?.state))).every((s) => s === 'completed');
        const cut = ds.find((d) => d.to < d.from && (d.inputs.stopped ?? []).length > 0);
        return grew && allShortDone && cut && (await queue.job(long[0]))?.state === 'active' ? cut : undefined;
      },
      { what: 'a scale-down while the long task is held', timeoutMs: 60_000 },
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}; decisions: ${JSON.stringify(await decisions())}; pool: ${JSON.stringify(await rm.pool('work'))}`);
    });
    expect(stoppedWhileHeld.to).toBeGreaterThanOrEqual(1);
    writeFileSync(release, '');
    await waitFor(async () => (await queue.job(long[0]))?.state === 'completed', { what: 'the long task to complete', timeoutMs: 30_000 });
    const jobs = await Promise.all([...long, ...short].map(async (id) => (await queue.job(id))?.job));
    for (const job of jobs) expect([job?.id, job?.attemptsStarted, job?.finishedOn !== undefined]).toEqual([job?.id, 1, true]);
    // By BullMQ's own record of which worker ran what, no stopped worker was running a task when it was stopped.
    const cuts = (await decisions()).filter((d) => d.to < d.from);
    for (const d of cuts)
      for (const id of d.inputs.stopped ?? []) {
        const running = jobs.filter((j) => j?.processedBy === id && (j.processedOn ?? Infinity) < d.at && (j.finishedOn ?? Infinity) > d.at);
        expect([id, running.map((j) => j?.name)]).toEqual([id, []]);
      }
  });
});
