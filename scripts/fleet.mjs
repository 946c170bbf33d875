#!/usr/bin/env node
// The project's two front doors, runnable on a fresh clone before anything is installed:
//   node scripts/fleet.mjs test [jest args]   install, build, find or start a Redis, run the suite
//   node scripts/fleet.mjs start              install, build, find or start a Redis, run the fleet
// Plain JavaScript with no dependencies, so that `npm test` and `npm start` work before `npm ci`.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { createHash, randomBytes } from 'node:crypto';
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

/** A fingerprint of the files under `paths` (names, sizes, modification times): what a step's output depends on. */
function fingerprint(paths) {
  const hash = createHash('sha1');
  const visit = (path) => {
    let st;
    try {
      st = statSync(path);
    } catch {
      return;
    }
    if (st.isDirectory()) {
      for (const name of readdirSync(path).sort()) if (name !== 'node_modules' && name !== 'dist' && !name.startsWith('.')) visit(join(path, name));
    } else hash.update(`${path}\0${st.size}\0${st.mtimeMs}\n`);
  };
  for (const p of paths) visit(join(root, p));
  return hash.digest('hex');
}

const BUILD_INPUTS = [
  'apps',
  'libs',
  'bench',
  'scripts',
  'tsconfig.json',
  'tsconfig.build.json',
  'tsconfig.build.emit.json',
  'nest-cli.json',
  'package-lock.json',
];

/**
 * `nest build`, unless `dist` was built from exactly these sources (FLEET_REBUILD=1 builds anyway). With
 * `checkedBeside`, the caller type-checks the same sources beside the build (see checkAndBuild): then the build
 * only emits (tsconfig.build.emit.json sets `noCheck`; the output is the same, 14 → 8 s on two cores), and the
 * caller marks it up to date with the function returned, once its check has passed. Otherwise it is marked here.
 */
export function build({ checkedBeside = false } = {}) {
  const stamp = join(root, '.fleet', 'build.stamp');
  const print = fingerprint(BUILD_INPUTS);
  if (process.env.FLEET_REBUILD !== '1' && existsSync(join(root, 'dist')) && existsSync(stamp) && readFileSync(stamp, 'utf8') === print) {
    say('build is up to date (nest build skipped)');
    return () => undefined;
  }
  say(checkedBeside ? 'building (nest build, emit only: the type-check runs beside it)' : 'building (nest build)');
  rmSync(stamp, { force: true });
  const config = checkedBeside ? ['-p', 'tsconfig.build.emit.json'] : [];
  run(process.execPath, [join(root, 'node_modules', '@nestjs', 'cli', 'bin', 'nest.js'), 'build', ...config]);
  run(process.execPath, [join(root, 'scripts', 'bundle-apps.mjs')]);
  const upToDate = () => {
    mkdirSync(dirname(stamp), { recursive: true });
    writeFileSync(stamp, print);
  };
  if (!checkedBeside) upToDate();
  return upToDate;
}

/** Runs `node <script> args` and resolves with its exit code, output inherited. */
function runAsync(script, args, what) {
  const child = spawn(process.execPath, [join(root, script), ...args], { cwd: root, stdio: 'inherit' });
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve({ what, code: code ?? (signal ? 1 : 0) })));
}

/**
 * The build, the type-check of sources and tests, and the lint with type-aware rules, side by side (each is
 * one thread). tsc is incremental and eslint cached (content-keyed) under .fleet/, so unchanged inputs cost
 * little; the build is skipped when its inputs are unchanged, and only emits when it runs (tsc checks here).
 */
async function checkAndBuild() {
  mkdirSync(join(root, '.fleet'), { recursive: true });
  say('type-checking (tsc, incremental), linting (eslint with type-aware rules, cached) and checking for circular imports (dpdm) beside the build');
  const checks = [
    runAsync(
      'node_modules/typescript/bin/tsc',
      ['--noEmit', '--incremental', '--tsBuildInfoFile', '.fleet/tsc.tsbuildinfo', '-p', 'tsconfig.json'],
      'tsc',
    ),
    runAsync(
      'node_modules/eslint/bin/eslint.js',
      ['--max-warnings', '0', '--cache', '--cache-strategy', 'content', '--cache-location', '.fleet/eslintcache', '.'],
      'eslint',
    ),
    // Circular imports (type-only imports aside), from every entry point: an app's main, a lib's index, a bench.
    runAsync(
      'node_modules/dpdm/lib/bin/dpdm.js',
      ['--no-tree', '--no-warning', '--transform', '--exit-code', 'circular:1', 'apps/*/src/main.ts', 'libs/*/src/index.ts', 'bench/*.ts'],
      'the circular-import check (dpdm)',
    ),
  ];
  const upToDate = build({ checkedBeside: true });
  const failed = (await Promise.all(checks)).filter((c) => c.code !== 0);
  for (const c of failed) say(`${c.what} failed (${c.code})`);
  if (failed.length > 0) process.exit(1);
  upToDate();
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

/**
 * Runs jest (ESM mode) with `args`, in band unless `workers` > 1; resolves with its totals and its results.
 * Every process of the run claims its ports under one FLEET_PORT_DIR (see freePort), so parallel jest
 * workers, and the apps they start, never race for a port.
 */
async function runJest(args, env, name = 'jest', workers = 1) {
  mkdirSync(join(root, '.fleet'), { recursive: true });
  const results = join(root, '.fleet', `${name}-results.json`);
  rmSync(results, { force: true });
  const jest = spawn(
    process.execPath,
    [
      '--experimental-vm-modules',
      '--no-warnings=ExperimentalWarning',
      join(root, 'node_modules', 'jest', 'bin', 'jest.js'),
      workers > 1 ? `--maxWorkers=${workers}` : '--runInBand',
      '--json',
      `--outputFile=${results}`,
      ...args,
    ],
    { cwd: root, stdio: 'inherit', env: { ...process.env, FLEET_PORT_DIR: portDir(), ...env } },
  );
  const code = await new Promise((resolve) => jest.on('exit', (c, s) => resolve(c ?? (s ? 1 : 0))));
  if (!existsSync(results)) return { code, passed: 0, failed: 1, failures: ['jest wrote no results'], results: undefined };
  const r = JSON.parse(readFileSync(results, 'utf8'));
  const failures = r.testResults.flatMap((s) => [
    ...(s.testExecError ? [`${s.name}: ${s.testExecError.message}`] : []),
    ...s.assertionResults
      .filter((t) => t.status === 'failed')
      .map((t) => `${t.fullName}: ${(t.failureMessages[0] ?? '').split('\n').slice(0, 3).join(' ')}`),
  ]);
  // A suite that fails to load has no failed tests of its own: count it, so it cannot pass unseen.
  return { code, passed: r.numPassedTests, failed: r.numFailedTests + r.numRuntimeErrorTestSuites, failures, results: r };
}

let claimedPorts;
/** One folder of port claims for this whole command, removed when it exits. */
function portDir() {
  if (!claimedPorts) {
    claimedPorts = mkdtempSync(join(tmpdir(), 'fleet-ports-'));
    process.on('exit', () => rmSync(claimedPorts, { recursive: true, force: true }));
  }
  return claimedPorts;
}

async function prepare() {
  ensureDependencies();
  await checkAndBuild();
  return ensureRedis();
}

/**
 * Jest projects whose suites isolate themselves (own key prefixes, claimed ports, private servers when they
 * are destructive) and so run in parallel workers: most of their time is spent waiting on processes.
 */
const PARALLEL_PROJECTS = ['unit', 'e2e', 'integration', 'security'];
/** Projects that stop Redis, cut links, pause or flood processes, or time a failover: one suite at a time. */
const SERIAL_PROJECTS = ['faults', 'hosts'];
/**
 * Parallel jest workers (FLEET_TEST_WORKERS overrides): one per core. With the serial projects beside them
 * that is one more process than cores, which the suites' waiting absorbs; more (tried: cores + 1) only
 * slowed every app's start-up and made the whole run longer on 2 cores.
 */
const testWorkers = () => Number(process.env.FLEET_TEST_WORKERS) || availableParallelism();

/** `--selectProjects a b …` taken out of jest's arguments: the projects asked for (all when none) and the rest. */
function splitProjects(args) {
  const rest = [];
  let selected;
  for (let i = 0; i < args.length; i++) {
    if (args[i] !== '--selectProjects') {
      rest.push(args[i]);
      continue;
    }
    selected ??= [];
    while (i + 1 < args.length && !args[i + 1].startsWith('-')) selected.push(args[++i]);
  }
  return { selected: selected ?? [...PARALLEL_PROJECTS, ...SERIAL_PROJECTS], rest };
}

/**
 * The parallel projects in `testWorkers()` workers and, beside them, the serial ones in band (one suite at a
 * time; their own suites never overlap). Returns one result per jest run.
 */
async function runSuites(args, env, name) {
  const { selected, rest } = splitProjects(args);
  const parallel = selected.filter((p) => !SERIAL_PROJECTS.includes(p));
  const serial = selected.filter((p) => SERIAL_PROJECTS.includes(p));
  // Filters may leave one side empty: that side has nothing to say; the totals still refuse a run of no tests.
  const extra = parallel.length > 0 && serial.length > 0 ? ['--passWithNoTests'] : [];
  const runs = [];
  if (parallel.length > 0) runs.push(runJest(['--selectProjects', ...parallel, ...extra, ...rest], env, name, testWorkers()));
  if (serial.length > 0) runs.push(runJest(['--selectProjects', ...serial, ...extra, ...rest], env, `${name}-serial`, 1));
  const done = await Promise.all(runs);
  report(done, name);
  return done;
}

/** Wall time per project and the ten slowest suites (also kept merged in .fleet/<name>-all.json). */
function report(runs, name) {
  const suites = runs.flatMap((r) => r.results?.testResults ?? []);
  if (suites.length === 0) return;
  const projectOf = (path) => /\.([a-z0-9]+)-spec\.ts$/.exec(path)?.[1] ?? 'unit';
  const span = new Map();
  for (const t of suites) {
    const p = projectOf(t.name);
    const [a, b] = span.get(p) ?? [Infinity, 0];
    span.set(p, [Math.min(a, t.startTime), Math.max(b, t.endTime)]);
  }
  const first = Math.min(...suites.map((t) => t.startTime));
  const last = Math.max(...suites.map((t) => t.endTime));
  process.stderr.write(`\n[fleet] jest: ${((last - first) / 1000).toFixed(0)} s of wall time; per project (first start to last end):\n`);
  for (const [p, [a, b]] of span) process.stderr.write(`  ${p.padEnd(12)} ${((b - a) / 1000).toFixed(1).padStart(6)} s\n`);
  process.stderr.write('[fleet] the ten slowest suites:\n');
  for (const t of [...suites].sort((x, y) => y.endTime - y.startTime - (x.endTime - x.startTime)).slice(0, 10)) {
    process.stderr.write(`  ${((t.endTime - t.startTime) / 1000).toFixed(1).padStart(6)} s  ${relative(root, t.name)}\n`);
  }
  const merged = { startTime: first, testResults: suites };
  writeFileSync(join(root, '.fleet', `${name}-results.json`), JSON.stringify(merged));
}

/**
 * e2e suites the ACL run leaves out, each because another suite in it takes the same Redis paths (the ACL user
 * can only lack a command or a key pattern, and these reach none the others do not): the run costs half.
 */
const ACL_SKIP = [
  // The apps refuse their config files or the request before they touch Redis.
  'apps/coordinator/test/config-errors',
  'apps/resource-manager/test/config-errors',
  'apps/trend-analyzer/test/config-errors',
  'apps/coordinator/test/bad-input',
  // The bundled client: the same routes and coordinator paths as ci-nodes.
  'apps/cli/test/packed-client',
  // The resource manager's registry, leases and decisions: scaling and two-managers take them all (pins are
  // HSET/HDEL/HGETALL on a key under the prefix, commands the other suites use too; every tick reads them).
  'apps/resource-manager/test/recovery',
  'apps/resource-manager/test/demand',
  'apps/resource-manager/test/pins',
];

/**
 * The e2e project again, against a private Redis whose only user is the least-privilege ACL user of the
 * Security docs (keys under one pattern, no dangerous commands): the fleet needs nothing more.
 */
async function testUnderAcl() {
  const password = randomBytes(12).toString('hex');
  const server = await startRedisServer({
    // `{acl-*`: tests of hash-tag prefixes (`{acl-…}`) too.
    extraArgs: ['--user', 'default', 'off', '--user', 'fleet', 'on', `>${password}`, ...fleetAclRules('acl-*', '{acl-*')],
  });
  say(`the e2e suites again, against a Redis that admits only the least-privilege ACL user (port ${server.port})`);
  const url = `redis://fleet:${password}@127.0.0.1:${server.port}`;
  const skip = ['--testPathIgnorePatterns', ...ACL_SKIP.map((p) => `${p}\\.`)];
  const r = await runSuites(['--selectProjects', 'e2e', ...skip], { REDIS_URL: url, FLEET_TEST_PREFIX_ROOT: 'acl-' }, 'acl');
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
  const runs = await runSuites(args, { REDIS_URL: redis.url }, 'jest');
  await redis.stop();
  finish(runs);
}

/** `npm run test:quick`: the unit specs and pure cores, for the edit loop: no build, no Redis, no app processes. */
async function testQuick(args) {
  ensureDependencies();
  finish([await runJest(['--selectProjects', 'unit', ...args], {}, 'quick', availableParallelism())]);
}

/** `npm run test:acl`: the e2e suites against a Redis that admits only the least-privilege ACL user (the build reused). */
async function testAcl() {
  ensureDependencies();
  build();
  if (!findRedisServer()) {
    process.stderr.write(`${HOW_TO_GET_REDIS}\n`);
    process.exit(1);
  }
  finish(await testUnderAcl());
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
else if (command === 'test-quick') await testQuick(rest);
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
