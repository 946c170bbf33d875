#!/usr/bin/env node
// The project's two front doors, runnable on a fresh clone before anything is installed:
//   node scripts/fleet.mjs test [jest args]   install, build, find or start a Redis, run the suite
//   node scripts/fleet.mjs start              install, build, find or start a Redis, run the fleet
// Plain JavaScript with no dependencies, so that `npm test` and `npm start` work before `npm ci`.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HOW_TO_GET_REDIS, findRedisServer, isRedisReachable, startRedisServer } from './lib/redis-server.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const say = (msg) => process.stderr.write(`[fleet] ${msg}\n`);

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
  if (await isRedisReachable(url)) {
    say(`using Redis at ${url}`);
    return { url, stop: async () => undefined };
  }
  if (!findRedisServer()) {
    say(`Redis at ${url} is not reachable.`);
    process.stderr.write(`${HOW_TO_GET_REDIS}\n`);
    process.exit(1);
  }
  const server = await startRedisServer();
  say(`Redis at ${url} is not reachable: started a private redis-server at ${server.url} (pid ${server.pid})`);
  return server;
}

/** Runs jest (ESM mode, in band) and prints the totals as the last line: `N passed, N failed`. */
async function test(args) {
  ensureDependencies();
  build();
  say('type-checking sources and tests (tsc --noEmit)');
  run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '-p', 'tsconfig.json']);
  const redis = await ensureRedis();
  mkdirSync(join(root, '.fleet'), { recursive: true });
  const results = join(root, '.fleet', 'jest-results.json');
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
    { cwd: root, stdio: 'inherit', env: { ...process.env, REDIS_URL: redis.url } },
  );
  const code = await new Promise((resolve) => jest.on('exit', (c, s) => resolve(c ?? (s ? 1 : 0))));
  await redis.stop();
  let passed = 0;
  let failed = 0;
  if (existsSync(results)) {
    const r = JSON.parse(readFileSync(results, 'utf8'));
    passed = r.numPassedTests;
    // A suite that fails to load has no failed tests of its own: count it, so it cannot pass unseen.
    failed = r.numFailedTests + r.numRuntimeErrorTestSuites;
  } else {
    failed = 1;
  }
  if (passed + failed === 0) say('no tests ran');
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(code !== 0 || failed > 0 || passed === 0 ? 1 : 0);
}

const [command, ...rest] = process.argv.slice(2);
if (command === 'test') await test(rest);
else if (command === 'start') {
  ensureDependencies();
  build();
  const redis = await ensureRedis();
  const { runFleet } = await import('./lib/run-fleet.mjs');
  const code = await runFleet({ root, redisUrl: redis.url, args: rest });
  await redis.stop();
  process.exit(code);
} else {
  process.stderr.write('usage: node scripts/fleet.mjs test [jest args] | start\n');
  process.exit(2);
}
