import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

/** Test files that do to their JUnit report path (argv[2]) what a hostile or broken test might. */
const REPORTS: Record<string, string> = {
  'fifo.mjs': "import { execFileSync } from 'node:child_process';\nexecFileSync('mkfifo', [process.argv[2]]);\n",
  'link.mjs': [
    "import { symlinkSync, writeFileSync } from 'node:fs';",
    "const elsewhere = process.argv[2] + '.elsewhere';",
    'writeFileSync(elsewhere, \'<testsuite><testcase name="borrowed"/></testsuite>\');',
    'symlinkSync(elsewhere, process.argv[2]);',
  ].join('\n'),
  'big.mjs': [
    "import { writeFileSync } from 'node:fs';",
    "const cases = Array.from({ length: 90000 }, (_, i) => `<testcase name=\"case ${i} ${'x'.repeat(40)}\"/>`).join('');",
    'writeFileSync(process.argv[2], `<testsuite>${cases}</testsuite>`);',
  ].join('\n'),
  // 2,000 cases in about 1.4 MiB: over JUNIT_INLINE_MAX_BYTES, so parsed on a thread of its own.
  'large.mjs': [
    "import { writeFileSync } from 'node:fs';",
    "const cases = Array.from({ length: 2000 }, (_, i) => `<testcase classname=\"c${i % 7}\" name=\"case ${i} ${'x'.repeat(600)}\">${i === 7 ? '<failure message=\"no\"/>' : ''}</testcase>`).join('');",
    'writeFileSync(process.argv[2], `<testsuite>${cases}</testsuite>`);',
  ].join('\n'),
  'private.mjs': [
    "import { statSync, writeFileSync } from 'node:fs';",
    "import { dirname } from 'node:path';",
    "import { tmpdir } from 'node:os';",
    'const dir = dirname(process.argv[2]);',
    "if (dir === tmpdir() || (statSync(dir).mode & 0o777) !== 0o700) { console.error('report folder ' + dir + ' is shared'); process.exit(1); }",
    'writeFileSync(process.argv[2], \'<testsuite><testcase name="mine"/></testsuite>\');',
  ].join('\n'),
};

describe("a test's JUnit report cannot hold up, mislead or be read by others", () => {
  const suite = isolatedSuite('reports', {
    'worker_templates.json': { cpu: cpuTemplate({ concurrency: 2, runners: { test: { '.mjs': ['node', '{test_file}', '{junit_file}'] } } }) },
    ...REPORTS,
  });

  it('a FIFO or a link in its place, or one too large, is not read (the file is one case, the reason in its output); its folder is private and goes with the attempt', async () => {
    // The worker's own temporary folder, where the attempts' report folders are made.
    const tmp = mkdtempSync(join(tmpdir(), 'reports-tmp-'));
    const w = suite.worker({ pool: 'cpu', id: 'reports', env: { TMPDIR: tmp } });
    try {
      const ids = await suite
        .queue('cpu')
        .add(...Object.keys(REPORTS).map((f) => ({ type: 'test', name: f, config: { test_file: f }, timeout_ms: 60_000 })));
      const done = await waitFor(
        async () => {
          const jobs = await Promise.all(ids.map((id) => suite.queue('cpu').job(id)));
          return jobs.every((j) => j?.state === 'completed' || j?.state === 'failed') ? jobs : undefined;
        },
        { what: 'every report test to end (none hangs the worker)', timeoutMs: 60_000, intervalMs: 100 },
      );
      const results = Object.fromEntries(
        Object.keys(REPORTS).map((f, i) => {
          const j = done[i];
          const r = j?.job.returnvalue as { case_counts?: Record<string, number>; output_tail?: string } | undefined;
          return [f, { state: j?.state, case_counts: r?.case_counts, note: /\[fleet\] (.*)/.exec(r?.output_tail ?? '')?.[1] }];
        }),
      );
      expect(results).toEqual({
        'fifo.mjs': { state: 'completed', case_counts: undefined, note: 'the JUnit report is not a regular file: not read' },
        'link.mjs': { state: 'completed', case_counts: undefined, note: 'the JUnit report is a link: not followed' },
        'big.mjs': {
          state: 'completed',
          case_counts: undefined,
          note: expect.stringMatching(/^the JUnit report is \d+ bytes, over the 4194304-byte limit: not read$/),
        },
        'large.mjs': { state: 'completed', case_counts: { passed: 1999, failed: 1, error: 0, skipped: 0 }, note: undefined },
        'private.mjs': { state: 'completed', case_counts: { passed: 1, failed: 0, error: 0, skipped: 0 }, note: undefined },
      });
      expect(isAlive(w.pid)).toBe(true);
      // Each attempt's report folder is removed at its end: the plain one, and the one the link test left more in.
      expect(readdirSync(tmp).filter((n) => n.startsWith('fleet-attempt-'))).toEqual([]);
    } finally {
      await w.stop();
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
