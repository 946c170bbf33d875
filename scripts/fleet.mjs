#!/usr/bin/env node
// The project's two front doors, runnable on a fresh clone before anything is installed:
//   node scripts/fleet.mjs test [jest args]   install, build, find or start a Redis, run the suite
//   node scripts/fleet.mjs start              install, build, find or start a Redis, run the fleet
// Plain JavaScript with no dependencies, so that `npm test` and `npm start` work before `npm ci`.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { HOW_TO_GET_REDIS, findRedisServer, fleetAclRules, isRedisReachable, redactUrl, startRedisServer } from './lib/redis-server.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const say = (msg) => process.stderr.write(`[fleet] ${msg}\n`);
// A reader that went away (`npm start | tee log`, then Ctrl-C) must not stop a drain half way.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  if (r.status !== 0) {
    say(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal})`);
    process.exit(r.status ?? 1);
  }
}

/** `npm ci` when node_modules is missing or older than the lockfile. */
export function ensureDependencies() {
  const marker = join(root, 'node_modules', '.package-lock.json');
  const lock = join(root, 'package-lock.json');
  if (existsSync(marker) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs) return;
  say('installing dependencies (npm ci)');
  run('npm', ['ci', '--no-audit', '--no-fund']);
}

export function build() {
  say('building (nest build)');
  run(process.execPath, [join(root, 'node_modules', '@nestjs', 'cli', 'bin', 'nest.js'), 'build']);
}

/**
 * REDIS_URL when something answers there (default redis://127.0.0.1:6379); otherwise a private,
 * memory-only redis-server on a free port; otherwise the way to get one, and exit 1.
 */
export async function ensureRedis() {
  const url = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
  if (url.startsWith('redis+cluster://')) {
    say(`using the Redis Cluster at ${redactUrl(url)}`);
    return { url, stop: async () => undefined };
  }
  if (url.startsWith('redis+sentinel://')) {
    say(`using the Redis master the sentinels at ${redactUrl(url)} name`);
    return { url, stop: async () => undefined };
  }
  if (await isRedisReachable(url)) {
    say(`using Redis at ${redactUrl(url)}`);
    return { url, stop: async () => undefined };
  }
  if (!findRedisServer()) {
    say(`Redis at ${redactUrl(url)} is not reachable.`);
    process.stderr.write(`${HOW_TO_GET_REDIS}\n`);
    process.exit(1);
  }
  const server = await startRedisServer();
  say(`Redis at ${redactUrl(url)} is not reachable: started a private redis-server at ${server.url} (pid ${server.pid})`);
  return server;
}

/** Runs jest (ESM mode, in band) with `args`; resolves with its totals from the JSON results. */
async function runJest(args, env, name = 'jest') {
  mkdirSync(join(root, '.fleet'), { recursive: true });
  const results = join(root, '.fleet', `${name}-results.json`);
  rmSync(results, { force: true });
  const jest = spawn(
    process.execPath,
    [
      '--experimental-vm-modules',
      '--no-warnings=ExperimentalWarning',
      join(root, 'node_modules', 'jest', 'bin', 'jest.js'),
      '--runInBand',
      '--json',
      `--outputFile=${results}`,
      ...args,
    ],
    { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } },
  );
  const code = await new Promise((resolve) => jest.on('exit', (c, s) => resolve(c ?? (s ? 1 : 0))));
  if (!existsSync(results)) return { code, passed: 0, failed: 1, failures: ['jest wrote no results'] };
  const r = JSON.parse(readFileSync(results, 'utf8'));
  const failures = r.testResults.flatMap((s) => [
    ...(s.testExecError ? [`${s.name}: ${s.testExecError.message}`] : []),
    ...s.assertionResults
      .filter((t) => t.status === 'failed')
      .map((t) => `${t.fullName}: ${(t.failureMessages[0] ?? '').split('\n').slice(0, 3).join(' ')}`),
  ]);
  // A suite that fails to load has no failed tests of its own: count it, so it cannot pass unseen.
  return { code, passed: r.numPassedTests, failed: r.numFailedTests + r.numRuntimeErrorTestSuites, failures };
}

async function prepare() {
  ensureDependencies();
  build();
  say('type-checking sources and tests (tsc --noEmit)');
  run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '-p', 'tsconfig.json']);
  say('linting (eslint with type-aware rules)');
  run(process.execPath, [join(root, 'node_modules', 'eslint', 'bin', 'eslint.js'), '--max-warnings', '0', '.']);
  return ensureRedis();
}

/**
 * The e2e project again, against a private Redis whose only user is the least-privilege ACL user of
 * README's Security section (keys under one pattern, no dangerous commands): the fleet needs nothing more.
 */
async function testUnderAcl() {
  const password = randomBytes(12).toString('hex');
  const server = await startRedisServer({
    // `{acl-*`: tests of hash-tag prefixes (`{acl-…}`) too.
    extraArgs: ['--user', 'default', 'off', '--user', 'fleet', 'on', `>${password}`, ...fleetAclRules('acl-*', '{acl-*')],
  });
  say(`the e2e suites again, against a Redis that admits only the least-privilege ACL user (port ${server.port})`);
  const url = `redis://fleet:${password}@127.0.0.1:${server.port}`;
  const r = await runJest(['--selectProjects', 'e2e'], { REDIS_URL: url, FLEET_TEST_PREFIX_ROOT: 'acl-' }, 'acl');
  await server.stop();
  return r;
}

/** Prints the totals line (`N passed, N failed`) last and exits non-zero unless every run passed and some test ran. */
function finish(runs) {
  const passed = runs.reduce((n, r) => n + r.passed, 0);
  const failed = runs.reduce((n, r) => n + r.failed, 0);
  if (passed + failed === 0) say('no tests ran');
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(runs.some((r) => r.code !== 0) || failed > 0 || passed === 0 ? 1 : 0);
}

/** The whole suite; the last line printed is `N passed, N failed`. */
async function test(args) {
  const redis = await prepare();
  const run = await runJest(args, { REDIS_URL: redis.url });
  await redis.stop();
  finish([run]);
}

/** `npm run test:acl`: the e2e suites against a Redis that admits only the least-privilege ACL user. */
async function testAcl() {
  await prepare().then((redis) => redis.stop());
  if (!findRedisServer()) {
    process.stderr.write(`${HOW_TO_GET_REDIS}\n`);
    process.exit(1);
  }
  finish([await testUnderAcl()]);
}

/** The seed's integration runner: `--component e2e|drm|pta` (all when absent), `--verbose`, `--config-dir DIR`. */
const COMPONENTS = {
  e2e: { what: 'the whole fleet end to end', args: ['--selectProjects', 'integration'] },
  drm: {
    what: 'the dynamic resource manager',
    args: ['--selectProjects', 'unit', 'e2e', '--', 'libs/scaling', 'libs/config/src/env', 'apps/resource-manager'],
  },
  pta: { what: 'the performance trend analyzer', args: ['--selectProjects', 'unit', 'e2e', '--', 'libs/stats', 'apps/trend-analyzer'] },
};

async function integration(argv) {
  const { values } = parseArgs({
    args: argv,
    options: { component: { type: 'string' }, verbose: { type: 'boolean', default: false }, 'config-dir': { type: 'string' } },
  });
  const names = values.component ? [values.component] : Object.keys(COMPONENTS);
  const unknown = names.filter((n) => !(n in COMPONENTS));
  if (unknown.length > 0) {
    process.stderr.write(`unknown component ${unknown.join(', ')}; use --component ${Object.keys(COMPONENTS).join('|')}\n`);
    process.exit(2);
  }
  const env = { FLEET_VERBOSE: values.verbose ? '1' : '0' };
  if (values['config-dir']) {
    env.INTEGRATION_CONFIG_DIR = resolve(values['config-dir']);
    if (!existsSync(env.INTEGRATION_CONFIG_DIR)) {
      process.stderr.write(`--config-dir ${env.INTEGRATION_CONFIG_DIR} does not exist\n`);
      process.exit(2);
    }
  }
  const redis = await prepare();
  const summary = [];
  for (const name of names) {
    const c = COMPONENTS[name];
    say(`component ${name}: ${c.what}`);
    const started = Date.now();
    const r = await runJest([...(values.verbose ? ['--verbose'] : []), ...c.args], { ...env, REDIS_URL: redis.url }, `integration-${name}`);
    summary.push({ name, ...r, seconds: ((Date.now() - started) / 1000).toFixed(1) });
  }
  await redis.stop();
  console.log('\nintegration summary');
  for (const s of summary) {
    const ok = s.code === 0 && s.failed === 0 && s.passed > 0;
    console.log(`  ${s.name.padEnd(4)} ${ok ? 'PASSED' : 'FAILED'}  ${s.passed} passed, ${s.failed} failed  (${s.seconds} s)`);
    for (const f of s.failures.slice(0, 5)) console.log(`       ${f.slice(0, 400)}`);
  }
  const passed = summary.reduce((n, s) => n + s.passed, 0);
  const failed = summary.reduce((n, s) => n + s.failed, 0);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(summary.every((s) => s.code === 0 && s.failed === 0 && s.passed > 0) ? 0 : 1);
}

const [command, ...rest] = process.argv.slice(2);
if (command === 'test') await test(rest);
else if (command === 'test-acl') await testAcl();
else if (command === 'integration') await integration(rest);
else if (command === 'bench' || command === 'soak' || command === 'eval-regressions') {
  ensureDependencies();
  build();
  const redis = await ensureRedis();
  const script = { bench: 'fleet-bench.js', soak: 'soak.js', 'eval-regressions': 'eval-regressions.js' }[command];
  const bench = spawn(process.execPath, [join(root, 'dist', 'bench', script), ...rest], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, REDIS_URL: redis.url },
  });
  const code = await new Promise((resolve) => bench.on('exit', (c) => resolve(c ?? 1)));
  await redis.stop();
  process.exit(code);
} else if (command === 'start') {
  // FLEET_SKIP_SETUP=1 runs what is built already (the integration test of `npm start` uses it).
  if (process.env.FLEET_SKIP_SETUP !== '1') {
    ensureDependencies();
    build();
  }
  const redis = await ensureRedis();
  const { runFleet } = await import('./lib/run-fleet.mjs');
  const code = await runFleet({ root, redisUrl: redis.url, args: rest });
  await redis.stop();
  process.exit(code);
} else {
  process.stderr.write(
    'usage: node scripts/fleet.mjs test [jest args] | integration [--component e2e|drm|pta] [--verbose] [--config-dir DIR] | start | bench [args] | soak [args] | eval-regressions [args]\n',
  );
  process.exit(2);
}
