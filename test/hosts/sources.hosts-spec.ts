import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import {
  cpuTemplate,
  distEntry,
  FAST_WORKER_ENV,
  type GitDaemon,
  gitDaemon,
  makeConfigDir,
  makeRepo,
  type PrivateRedis,
  type Service,
  startRedisServer,
  startService,
  uniquePrefix,
  waitFor,
} from '@fleet/testing';
import { type HostProcess, makeHosts, type NetnsHost, netnsUnavailable, sharedAddress, startInHost, stopAll } from './netns.js';

const unavailable = netnsUnavailable();
if (unavailable) process.stdout.write(`sources hosts suite skipped: ${unavailable}\n`);
const maybe = unavailable ? describe.skip : describe;

const wait = (ms: number) =>
  `import { test } from 'node:test';\nimport assert from 'node:assert/strict';\nimport { readFileSync } from 'node:fs';\n` +
  `test('at its commit', async () => { await new Promise((r) => setTimeout(r, ${ms})); assert.equal(readFileSync('which.txt', 'utf8'), process.env.FLEET_REPO.split('/').pop()); });\n`;

/**
 * Three hosts (network namespaces, two workers each, each host its own source cache) fetch two repositories
 * from a real `git daemon` on an address all of them reach over their own links: each host fetches each
 * repository's commit once, however many of its workers start it.
 */
maybe('three hosts fetch sources from a git server: once per host and commit', () => {
  const base = mkdtempSync(join(tmpdir(), 'fleet-hosts-sources-'));
  const prefix = uniquePrefix('hsrc');
  let net: ReturnType<typeof makeHosts>;
  let shared: ReturnType<typeof sharedAddress>;
  let daemon: GitDaemon;
  let server: PrivateRedis;
  let config: ReturnType<typeof makeConfigDir>;
  let coordinator: Service;
  const workers: HostProcess[] = [];

  beforeAll(async () => {
    for (const name of ['app1.git', 'app2.git']) {
      const files: Record<string, string> = { 'which.txt': name };
      for (let i = 0; i < 9; i++) files[`t/f${i}.test.mjs`] = wait(300);
      makeRepo(join(base, 'git'), name.replace(/\.git$/, ''), [{ files }]);
    }
    net = makeHosts(3);
    shared = sharedAddress(net.hosts);
    daemon = await gitDaemon(join(base, 'git'), shared.address);
    config = makeConfigDir({
      'worker_templates.json': { cpu: cpuTemplate({ concurrency: 1, sources: [`git://${shared.address}:*/*`] }) },
    });
    server = await startRedisServer({ extraArgs: ['--bind', '127.0.0.1', ...net.hosts.map((h) => h.gateway), '--protected-mode', 'no'] });
    coordinator = await startService('coordinator', {
      REDIS_URL: server.url,
      FLEET_PREFIX: prefix,
      CONFIG_DIR: config.path,
      COORDINATOR_SOURCE_DIR: join(base, 'coordinator'),
      RUNS_TICK_MS: '200',
    });
    net.hosts.forEach((host: NetnsHost, i) => {
      for (const slot of ['a', 'b']) {
        workers.push(
          startInHost(host, distEntry('worker'), ['--pool', 'cpu', '--id', `h${i + 1}-${slot}`], {
            ...FAST_WORKER_ENV,
            REDIS_URL: `redis://${host.gateway}:${server.port}`,
            FLEET_PREFIX: prefix,
            CONFIG_DIR: config.path,
            WORKER_SOURCE_DIR: join(base, `cache-h${i + 1}`),
          }),
        );
      }
    });
    await waitFor(async () => ((await request(coordinator.url).get('/workers').expect(200)).body.workers as unknown[]).length === 6, {
      what: 'six workers on three hosts registered',
      timeoutMs: 30_000,
      intervalMs: 200,
    });
  });

  afterAll(async () => {
    await stopAll(workers, 20_000);
    await coordinator?.stop();
    await daemon?.stop();
    await server?.stop('SIGKILL');
    shared?.remove();
    net?.remove();
    config?.remove();
    rmSync(base, { recursive: true, force: true });
  });

  it('two runs of two repositories: every file passes at its commit, and each host fetched each repository it ran at most once', async () => {
    const runs = await Promise.all(
      ['app1', 'app2'].map(
        async (name) =>
          (
            await coordinator.http
              .post('/runs')
              .send({ name, pool: 'cpu', tests: ['t/'], source: { repo: daemon.url(name), commit: 'main' } })
              .expect(201)
          ).body as { id: string },
      ),
    );
    const done = await Promise.all(
      runs.map((r) =>
        waitFor(
          async () => {
            const v = (await coordinator.http.get(`/runs/${r.id}`).expect(200)).body as {
              state: string;
              finished_at: string | null;
              files: Array<{ state: string; worker_id: string | null }>;
            };
            return v.finished_at ? v : undefined;
          },
          { what: `run ${r.id} to finish`, timeoutMs: 90_000, intervalMs: 300 },
        ),
      ),
    );
    for (const v of done) expect(v.state).toBe('passed');
    // Which hosts ran which repository (from the runs), against what the git server saw (its own log).
    const ran = new Map<string, Set<string>>();
    done.forEach((v, i) => {
      for (const f of v.files) {
        const host = net.hosts[Number(f.worker_id?.slice(1, 2)) - 1]?.address;
        ran.set(host, (ran.get(host) ?? new Set()).add(`/app${i + 1}.git`));
      }
    });
    const fetched = new Map<string, string[]>();
    for (const f of daemon.fetches().filter((x) => x.from !== shared.address)) fetched.set(f.from, [...(fetched.get(f.from) ?? []), f.repo]);
    for (const h of net.hosts)
      expect([h.address, [...(fetched.get(h.address) ?? [])].sort()]).toEqual([h.address, [...(ran.get(h.address) ?? [])].sort()]);
    expect(ran.size).toBeGreaterThanOrEqual(2);
    // Each host's own cache says the same.
    for (const [i] of net.hosts.entries()) {
      const log = join(base, `cache-h${i + 1}`, 'events.log');
      const fetches = existsSync(log)
        ? readFileSync(log, 'utf8')
            .split('\n')
            .filter((l) => l.includes('"event":"fetch"'))
        : [];
      expect(fetches.length).toBe(ran.get(net.hosts[i]?.address)?.size ?? 0);
    }
    process.stdout.write(`sources over hosts: ${[...ran].map(([h, r]) => `${h} ran ${[...r].join(' ')}`).join('; ')}\n`);
  });
});
