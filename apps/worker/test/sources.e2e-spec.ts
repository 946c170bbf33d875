import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import {
  cpuTemplate,
  distEntry,
  freePort,
  type GitDaemon,
  gitDaemon,
  type HoldingRelay,
  holdingRelay,
  isolatedSuite,
  makeRepo,
  type Service,
  type TestRepo,
  waitFor,
} from '@fleet/testing';

/**
 * Runs that name a source: real bare repositories made here, served as file:// and by a real `git daemon`,
 * real workers sharing a host's source cache, and the coordinator resolving names and tests at the commit.
 */
const base = mkdtempSync(join(tmpdir(), 'fleet-sources-'));
const gitDir = join(base, 'git');
const hostCache = join(base, 'host-cache');

const nodeTest = (body: string) =>
  `import { test } from 'node:test';\nimport assert from 'node:assert/strict';\nimport { existsSync, readFileSync } from 'node:fs';\nimport { execFileSync } from 'node:child_process';\n${body}\n`;
const waitMs = (ms: number) => nodeTest(`test('waits', async () => { await new Promise((r) => setTimeout(r, ${ms})); });`);

/** The suite's files at one commit: `t/a` passes only while value.txt says 1. */
function tree(value: string): Record<string, string> {
  return {
    't/value.txt': value,
    't/a.test.mjs': nodeTest(
      [
        "test('value is 1', () => assert.equal(readFileSync('t/value.txt', 'utf8'), '1'));",
        "test('runs in a checkout of FLEET_COMMIT', () => {",
        "  assert.equal(execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8' }).trim(), process.env.FLEET_COMMIT);",
        '  assert.match(process.env.FLEET_REPO, /^file:/);',
        '});',
      ].join('\n'),
    ),
    't/b.test.mjs': waitMs(150),
    't/c.test.mjs': waitMs(150),
    't/d.test.mjs': waitMs(150),
    ...Object.fromEntries(
      [1, 2, 3, 4].map((i) => [`setup/check${i}.test.mjs`, nodeTest("test('the setup ran here', () => assert.ok(existsSync('.setup-done')));")]),
    ),
    'flaky/f.test.mjs': nodeTest("test('settles', () => assert.notEqual(process.env.FLEET_ATTEMPT, '1', 'fails on its first attempt'));"),
    // Runs until the test lets it go, then checks its tree is still all there.
    'hold/hold.test.mjs': nodeTest(
      [
        "test('holds its checkout', async () => {",
        `  while (!existsSync(${JSON.stringify(join(base, 'release'))})) await new Promise((r) => setTimeout(r, 50));`,
        "  assert.equal(readFileSync('t/value.txt', 'utf8').length, 1);",
        "  assert.ok(existsSync('t/a.test.mjs'));",
        '});',
      ].join('\n'),
    ),
  };
}

interface Event {
  event: string;
  commit?: string;
  checkout?: string;
  pid: number;
  at: number;
}
const events = (dir: string): Event[] =>
  existsSync(join(dir, 'events.log'))
    ? readFileSync(join(dir, 'events.log'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Event)
    : [];
const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0);

interface RunView {
  id: string;
  state: string;
  finished_at: string | null;
  source: { repo: string; commit: string; ref?: string } | null;
  files: Array<{ key: string; state: string; reason: string | null; message: string | null; output_tail: string | null; attempts: number }>;
}
interface TaskView {
  id: string;
  state: string;
  worker_id: string | null;
  attempts: { made: number };
  error: { reason: string; message: string } | null;
}

describe('sources: a run tests the commit it names', () => {
  let repo: TestRepo;
  let daemon: GitDaemon;
  let relay: HoldingRelay;
  const files: Record<string, string | object> = {};
  beforeAll(async () => {
    repo = makeRepo(gitDir, 'app', [{ files: tree('1'), tag: 'v1' }, { files: tree('2') }, { files: { 't/value.txt': '3' } }]);
    // main is at the third commit (value 3); v1 tags the first.
    daemon = await gitDaemon(gitDir);
    relay = await holdingRelay(daemon.port);
    const sources = [`file://${gitDir}/*`, 'git://127.0.0.1:*/*'];
    const template = (capability: string, extra: Record<string, unknown> = {}) =>
      cpuTemplate({ concurrency: 2, capabilities: [capability], sources, ...extra });
    Object.assign(files, {
      'worker_templates.json': {
        src: template('SRC'),
        tiny: template('TINY'),
        remote: template('REMOTE'),
        'setup-ok': template('SETUP_OK', {
          concurrency: 3,
          setup: ['sh', '-c', `echo ran >> ${join(base, 'setup-ok.count')} && echo done > .setup-done`],
        }),
        'setup-bad': template('SETUP_BAD', {
          setup: ['sh', '-c', `echo ran >> ${join(base, 'setup-bad.count')}; echo 'resolver: no version of left-pad matches' >&2; exit 3`],
        }),
        plain: cpuTemplate({ capabilities: ['PLAIN'] }),
      },
    });
  });
  const suite = isolatedSuite('sources', files);
  let coordinator: Service;
  const http = () => coordinator.http;
  afterAll(async () => {
    await relay?.close();
    await daemon?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  beforeAll(async () => {
    coordinator = await suite.service('coordinator', { RUNS_TICK_MS: '200', COORDINATOR_SOURCE_DIR: join(base, 'coordinator') });
  });

  const finished = (id: string) =>
    waitFor(
      async () => {
        const r = (await http().get(`/runs/${id}`).expect(200)).body as RunView;
        return r.finished_at !== null ? r : undefined;
      },
      { what: `run ${id} to finish`, timeoutMs: 60_000, intervalMs: 200 },
    );
  const taskDone = (id: string) =>
    waitFor(
      async () => {
        const t = (await http().get(`/tasks/${id}`).expect(200)).body as TaskView;
        return t.state === 'completed' || t.state === 'failed' ? t : undefined;
      },
      { what: `task ${id} to finish`, timeoutMs: 60_000, intervalMs: 100 },
    );
  const submitTest = async (capability: string, file: string, source: { repo: string; commit: string }, extra: Record<string, unknown> = {}) =>
    (
      (
        await http()
          .post('/tasks')
          .send({ type: 'test', name: file, config: { test_file: file, source }, hardware_requirements: { capabilities: [capability] }, ...extra })
          .expect(201)
      ).body as { id: string }
    ).id;

  it('runs two commits at once on the same workers, each with its own verdict, and fetches each commit once per host', async () => {
    suite.worker({ pool: 'src', id: 'src-1', env: { WORKER_SOURCE_DIR: hostCache } });
    suite.worker({ pool: 'src', id: 'src-2', env: { WORKER_SOURCE_DIR: hostCache } });
    const [first, second] = await Promise.all(
      ['v1', 'main'].map(
        async (commit) =>
          (
            await http()
              .post('/runs')
              .send({ name: `at ${commit}`, pool: 'src', tests: ['t/'], source: { repo: repo.url, commit } })
              .expect(201)
          ).body as RunView,
      ),
    );
    expect(first.source).toEqual({ repo: repo.url, commit: repo.shas[0], ref: 'v1' });
    expect(second.source).toEqual({ repo: repo.url, commit: repo.shas[2], ref: 'main' });
    const [one, two] = await Promise.all([finished(first.id), finished(second.id)]);
    // What made a file fail is in the message: its reason, message and the tail of its output.
    const failing = (run: RunView) =>
      run.files
        .filter((f) => f.state !== 'passed')
        .map((f) => ({ key: f.key, state: f.state, reason: f.reason, message: f.message, output: f.output_tail }));
    expect({ state: one.state, failing: failing(one) }).toEqual({ state: 'passed', failing: [] });
    expect(one.files).toHaveLength(4);
    expect(two.state).toBe('failed');
    expect(two.files.filter((f) => f.state !== 'passed').map((f) => [f.key, f.state])).toEqual([['t/a.test.mjs', 'failed']]);

    // One checkout per commit on this host, and never two fetches of a commit (fetching the second brings
    // the first, its parent, along: then the first needs none).
    const log = events(hostCache);
    for (const sha of [repo.shas[0], repo.shas[2]]) {
      expect(log.filter((e) => e.event === 'checkout' && e.commit === sha)).toHaveLength(1);
      expect(log.filter((e) => e.event === 'fetch' && e.commit === sha).length).toBeLessThanOrEqual(1);
    }
    expect(log.filter((e) => e.event === 'fetch').length).toBeGreaterThanOrEqual(1);

    // The JUnit document says what was tested.
    const xml = (await http().get(`/runs/${one.id}/junit.xml`).expect(200)).text;
    const props = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', isArray: (n) => n === 'property' }).parse(xml).testsuites
      .properties.property as Array<{ name: string; value: string }>;
    expect(props).toEqual(
      expect.arrayContaining([
        { name: 'source_repo', value: repo.url },
        { name: 'source_commit', value: repo.shas[0] },
        { name: 'source_ref', value: 'v1' },
      ]),
    );
  });

  it('runs the same commit again without fetching or checking out anything', async () => {
    const before = events(hostCache);
    const again = (
      await http()
        .post('/runs')
        .send({ name: 'again', pool: 'src', tests: ['t/'], source: { repo: repo.url, commit: repo.shas[0] } })
        .expect(201)
    ).body as RunView;
    expect(again.source).toEqual({ repo: repo.url, commit: repo.shas[0] });
    expect((await finished(again.id)).state).toBe('passed');
    expect(events(hostCache).filter((e) => e.event === 'fetch' || e.event === 'checkout')).toEqual(
      before.filter((e) => e.event === 'fetch' || e.event === 'checkout'),
    );
  });

  it('keeps flakiness per test file across commits', async () => {
    for (const commit of ['v1', 'main']) {
      const r = (
        await http()
          .post('/runs')
          .send({ name: `flaky at ${commit}`, pool: 'src', tests: ['flaky/'], retries: 1, source: { repo: repo.url, commit } })
          .expect(201)
      ).body as RunView;
      expect((await finished(r.id)).state).toBe('passed');
    }
    const { flaky } = (await http().get('/flaky').expect(200)).body as { flaky: Array<{ test: string; runs: number; flaky: number }> };
    expect(flaky).toEqual([expect.objectContaining({ test: 'flaky/f.test.mjs', runs: 2, flaky: 2 })]);
  });

  it('fleet run --source auto tests the checkout it runs in, at its HEAD, and refuses a tree with changes the commit lacks', () => {
    const work = join(base, 'ci-checkout');
    const git = (...args: string[]) => spawnSync('git', args, { cwd: work, encoding: 'utf8' });
    spawnSync('git', ['clone', '-q', repo.bare, work]);
    git('checkout', '-q', 'v1');
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(GITHUB_|CI_)/.test(k)));
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, [distEntry('cli'), 'run', 't/', '--pool', 'src', '--source', 'auto', ...args, '--poll-ms', '200'], {
        cwd: work,
        env: { ...env, COORDINATOR_URL: coordinator.url },
        encoding: 'utf8',
        timeout: 60_000,
      });
    const ok = cli();
    expect([ok.status, ok.stdout]).toEqual([0, expect.stringContaining(`tested commit ${repo.shas[0]} of ${repo.url}`)]);
    writeFileSync(join(work, 't', 'new.test.mjs'), waitMs(1));
    const dirty = cli();
    expect([dirty.status, dirty.stderr]).toEqual([
      2,
      expect.stringMatching(/has changes that are not in commit [0-9a-f]{12}[\s\S]*\?\? t\/new\.test\.mjs[\s\S]*--allow-dirty/),
    ]);
    const allowed = cli('--allow-dirty');
    expect([allowed.status, allowed.stdout]).toEqual([0, expect.stringContaining('4 file(s)')]);
  });

  it('runs a setup once per host and commit before the tests; a failing setup ends every file as error with its output, once', async () => {
    suite.worker({ pool: 'setup-ok', id: 'setup-ok-1', env: { WORKER_SOURCE_DIR: hostCache } });
    suite.worker({ pool: 'setup-bad', id: 'setup-bad-1', env: { WORKER_SOURCE_DIR: hostCache } });
    suite.worker({ pool: 'setup-bad', id: 'setup-bad-2', env: { WORKER_SOURCE_DIR: hostCache } });
    const source = { repo: repo.url, commit: 'v1' };
    const [ok, bad] = await Promise.all(
      ['setup-ok', 'setup-bad'].map(
        async (pool) =>
          (
            await http()
              .post('/runs')
              .send({ name: pool, pool, tests: ['setup/'], retries: 2, source })
              .expect(201)
          ).body as RunView,
      ),
    );
    const good = await finished(ok.id);
    expect(good.state).toBe('passed');
    expect(good.files).toHaveLength(4);
    expect(lines(join(base, 'setup-ok.count'))).toBe(1);

    const failed = await finished(bad.id);
    expect(failed.state).toBe('error');
    for (const f of failed.files) {
      expect(f).toMatchObject({ state: 'error', reason: 'setup_failed', attempts: 1 });
      expect(f.message).toMatch(new RegExp(`setup \\(sh -c .*\\) for commit ${repo.shas[0]} of ${repo.url} failed on .*: exited with code 3`));
      expect(f.output_tail).toMatch(/no version of left-pad matches/);
    }
    // Two workers, four files, retries allowed: the setup ran once on this host.
    expect(lines(join(base, 'setup-bad.count'))).toBe(1);
  });

  it('under a tiny cache budget evicts checkouts, but never one a running test is using', async () => {
    const dir = join(base, 'tiny-cache');
    const worker = suite.worker({ pool: 'tiny', id: 'tiny-1', env: { WORKER_SOURCE_DIR: dir, WORKER_SOURCE_CACHE_BYTES: '1' } });
    const holder = await submitTest('TINY', 'hold/hold.test.mjs', { repo: repo.url, commit: repo.shas[0] });
    await waitFor(() => events(dir).some((e) => e.event === 'checkout' && e.commit === repo.shas[0]), {
      what: 'the held checkout',
      timeoutMs: 30_000,
    });
    // A second commit is built while the first is in use: over budget, and neither may go.
    const other = await submitTest('TINY', 't/b.test.mjs', { repo: repo.url, commit: repo.shas[1] });
    expect((await taskDone(other)).state).toBe('completed');
    expect(events(dir).filter((e) => e.event === 'evict')).toEqual([]);
    writeFileSync(join(base, 'release'), '');
    // The held test checks its tree is whole at its end.
    expect((await taskDone(holder)).state).toBe('completed');
    // A third build finds both idle: they go, the one in use stays.
    const third = await submitTest('TINY', 't/b.test.mjs', { repo: repo.url, commit: repo.shas[2] });
    expect((await taskDone(third)).state).toBe('completed');
    const evicted = events(dir).filter((e) => e.event === 'evict');
    expect(evicted.map((e) => e.checkout?.split('@')[1]).sort()).toEqual([repo.shas[0], repo.shas[1]].sort());
    expect(readdirSync(join(dir, 'checkouts'))).toHaveLength(1);
    await worker.stop();
  });

  const relayRepo = () => `git://127.0.0.1:${relay.port}/app.git`;

  it('two workers that start the same new commit at once fetch it once', async () => {
    const dir = join(base, 'pair-cache');
    const source = { repo: relayRepo(), commit: repo.shas[0] };
    const ids = [await submitTest('REMOTE', 't/b.test.mjs', source), await submitTest('REMOTE', 't/c.test.mjs', source)];
    // The coordinator has fetched through the relay; from here on it holds what the workers open.
    relay.hold();
    const before = relay.accepted();
    const pair = ['pair-1', 'pair-2'].map((id) => suite.worker({ pool: 'remote', id, concurrency: 1, env: { WORKER_SOURCE_DIR: dir } }));
    // Both tasks started, one on each worker: one is fetching (its connection held), the other waits for it.
    await waitFor(
      async () => {
        const views = await Promise.all(ids.map(async (id) => (await http().get(`/tasks/${id}`).expect(200)).body as TaskView));
        return views.every((v) => v.state === 'active') && new Set(views.map((v) => v.worker_id)).size === 2 && relay.held() === 1;
      },
      { what: 'both workers to start the commit while one fetches it', timeoutMs: 30_000, intervalMs: 100 },
    );
    relay.resume();
    for (const id of ids) expect((await taskDone(id)).state).toBe('completed');
    expect(relay.accepted() - before).toBe(1);
    expect(events(dir).filter((e) => e.event === 'fetch')).toHaveLength(1);
    await Promise.all(pair.map((w) => w.stop()));
  });

  it('recovers from a worker SIGKILLed while it fetches: the next worker uses the same cache', async () => {
    const dir = join(base, 'killed-cache');
    // The coordinator resolves and fetches through the relay first; then the relay holds the worker's fetch.
    const id = await submitTest('REMOTE', 't/b.test.mjs', { repo: relayRepo(), commit: repo.shas[1] });
    relay.hold();
    const doomed = suite.worker({ pool: 'remote', id: 'remote-doomed', env: { WORKER_SOURCE_DIR: dir } });
    await waitFor(() => relay.held() >= 1, { what: "the worker's fetch to be in progress", timeoutMs: 30_000 });
    await doomed.stop('SIGKILL');
    relay.release();
    const next = suite.worker({ pool: 'remote', id: 'remote-next', env: { WORKER_SOURCE_DIR: dir } });
    const done = await taskDone(id);
    expect(done).toMatchObject({ state: 'completed', worker_id: 'remote-next' });
    const fetches = events(dir).filter((e) => e.event === 'fetch');
    expect(fetches.map((e) => e.pid)).toEqual([next.pid]);
    await next.stop();
  });

  it('ends the files of a fetch that takes too long as error, naming repository and commit, without retries', async () => {
    const dir = join(base, 'slow-cache');
    const id = await submitTest('REMOTE', 't/c.test.mjs', { repo: relayRepo(), commit: repo.shas[2] }, { max_attempts: 3 });
    relay.hold();
    // A lock of its own, longer than the fetch's limit: the test's short one (2 s, for quick recovery of killed
    // workers) was lost three times in a row on a loaded CI machine, and BullMQ then failed the task as stalled.
    suite.worker({
      pool: 'remote',
      id: 'remote-slow',
      env: { WORKER_SOURCE_DIR: dir, WORKER_SOURCE_FETCH_TIMEOUT_MS: '1500', WORKER_LOCK_MS: '15000', WORKER_STALLED_INTERVAL_MS: '5000' },
    });
    const t = await taskDone(id);
    relay.release();
    expect(t.state).toBe('failed');
    expect(t.attempts.made).toBe(1);
    expect(t.error).toMatchObject({ reason: 'source_failed' });
    expect(t.error?.message).toBe(`fetching commit ${repo.shas[2]} of ${relayRepo()} took longer than 1500 ms and was stopped`);
  });

  it('ends a file as error when its repository is gone by the time a worker fetches it', async () => {
    const gone = makeRepo(gitDir, 'gone', [{ files: { 't/b.test.mjs': waitMs(1) } }]);
    const id = await submitTest('SRC', 't/b.test.mjs', { repo: gone.url, commit: gone.shas[0] }, { max_attempts: 3 });
    renameSync(gone.bare, `${gone.bare}.moved`);
    const t = await taskDone(id);
    expect(t).toMatchObject({ state: 'failed', attempts: { made: 1 }, error: { reason: 'source_failed' } });
    expect(t.error?.message).toMatch(new RegExp(`^${gone.url} could not be fetched for commit ${gone.shas[0]}: `));
  });

  it('ends a file as error when the host has no room for its commit, naming repository and commit', async () => {
    const small = join(base, 'small-disk');
    mkdirSync(small);
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small], { encoding: 'utf8' });
    if (mounted.status !== 0) {
      process.stdout.write(`full-disk case skipped: cannot mount a tmpfs here (${mounted.stderr.trim()})\n`);
      return;
    }
    suite.onCleanup(() => spawnSync('umount', ['-l', small]));
    // Two megabytes that do not compress, in a one-megabyte cache.
    const big = makeRepo(gitDir, 'big', [{ files: { 't/b.test.mjs': waitMs(1), 'blob.bin': randomBytes(2 << 20).toString('base64') } }]);
    const worker = suite.worker({ pool: 'tiny', id: 'tiny-full', env: { WORKER_SOURCE_DIR: small } });
    const id = await submitTest('TINY', 't/b.test.mjs', { repo: big.url, commit: big.shas[0] }, { max_attempts: 3 });
    const t = await taskDone(id);
    await worker.stop();
    expect(t).toMatchObject({ state: 'failed', attempts: { made: 1 }, error: { reason: 'source_failed' } });
    expect(t.error?.message).toMatch(/no space left/i);
    expect(t.error?.message).toContain(`commit ${big.shas[0]} of ${big.url}`);
  });

  it.each([
    [
      'a repository outside the allow-list',
      { repo: 'file:///srv/elsewhere/app.git', commit: 'main' },
      422,
      'source.repo',
      /is not on pool src's allow-list: file:\/\//,
    ],
    [
      'a URL with credentials',
      { repo: 'https://me:secret@git.example.com/app.git', commit: 'main' },
      400,
      'source.repo',
      /must not hold credentials/,
    ],
    ['an unknown commit', { repo: 'REPO', commit: 'f'.repeat(40) }, 422, 'source.commit', /commit f{40} is not in file:/],
    ['an unknown branch', { repo: 'REPO', commit: 'no-such-branch' }, 422, 'source.commit', /no branch or tag "no-such-branch" in file:/],
    ['an unreachable server', { repo: 'UNREACHABLE', commit: 'main' }, 502, 'source.repo', /could not be fetched for commit main: /],
  ])('refuses %s at submit time, naming the field', async (_what, source, status, field, reason) => {
    const closed = await freePort();
    const repoUrl = source.repo === 'REPO' ? repo.url : source.repo === 'UNREACHABLE' ? `git://127.0.0.1:${closed}/app.git` : source.repo;
    const res = await http()
      .post('/runs')
      .send({ name: 'bad', pool: 'src', tests: ['t/'], source: { ...source, repo: repoUrl } })
      .expect(status);
    expect(res.body.errors).toEqual([{ field, reason: expect.stringMatching(reason) }]);
  });

  it('resolves tests against the commit, and refuses a source for a pool with no allow-list', async () => {
    const missing = await http()
      .post('/runs')
      .send({ name: 'x', pool: 'src', tests: ['nope/'], source: { repo: repo.url, commit: 'v1' } })
      .expect(422);
    expect(missing.body.errors).toEqual([{ field: 'tests[0]', reason: `matches no runnable file in commit ${repo.shas[0]} of ${repo.url}` }]);
    const plain = await http()
      .post('/runs')
      .send({ name: 'x', pool: 'plain', tests: ['t/'], source: { repo: repo.url, commit: 'v1' } })
      .expect(422);
    expect(plain.body.errors[0]).toEqual({ field: 'source.repo', reason: 'pool plain takes no sources (its template has no "sources" allow-list)' });
  });
});
