// `npm start`: the whole fleet on one machine — coordinator, resource manager (which starts and stops the
// workers), trend analyzer and dashboard — from the example config, with prefixed logs (readable lines on a
// terminal, JSON lines otherwise). Ctrl-C stops it all.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const say = (msg) => process.stderr.write(`[fleet] ${msg}\n`);

function startApp(root, name, env) {
  // Each app from its bundle (scripts/bundle-apps.mjs: one file to load, a quicker start), as the start scripts do.
  const child = spawn(process.execPath, [join('dist', 'apps', name, 'src', 'main.bundle.mjs')], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => process.stdout.write(`[${name}] ${line}\n`));
  }
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ name, code, signal })));
  return { name, child, exited };
}

async function waitForHealth(url, timeoutMs, exitedEarly) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exitedEarly()) throw new Error(`${url}: the app exited while starting (see its log above)`);
    try {
      if ((await fetch(`${url}/health/ready`)).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} was not ready (/health/ready) within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function runFleet({ root, redisUrl }) {
  const env = { ...process.env, REDIS_URL: redisUrl, LOG_FORMAT: process.env.LOG_FORMAT || (process.stdout.isTTY ? 'pretty' : 'json') };
  const ports = {
    coordinator: env.COORDINATOR_PORT || '8080',
    'resource-manager': env.RESOURCE_MANAGER_PORT || '8081',
    'trend-analyzer': env.TREND_ANALYZER_PORT || '8082',
    dashboard: env.DASHBOARD_PORT || '8083',
  };
  const apps = Object.keys(ports).map((name) => startApp(root, name, env));
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    say('stopping the fleet (the resource manager drains its workers first)');
    for (const a of apps) a.child.kill('SIGTERM');
    const timer = setTimeout(() => apps.forEach((a) => a.child.kill('SIGKILL')), 60_000);
    await Promise.all(apps.map((a) => a.exited));
    clearTimeout(timer);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  const exitedEarly = () => apps.some((a) => a.child.exitCode !== null || a.child.signalCode !== null);
  try {
    for (const port of Object.values(ports)) await waitForHealth(`http://127.0.0.1:${port}`, 60_000, exitedEarly);
  } catch (err) {
    say(String(err.message ?? err));
    await stop();
    return 1;
  }
  say(
    `the fleet is running: coordinator :${ports.coordinator}, resource manager :${ports['resource-manager']}, trend analyzer :${ports['trend-analyzer']}`,
  );
  say(`dashboard: http://127.0.0.1:${ports.dashboard}/  (API docs: http://127.0.0.1:${ports.coordinator}/docs)`);
  say('submit the example tasks with `npm run demo` in another terminal; Ctrl-C stops everything');
  const first = await Promise.race(apps.map((a) => a.exited));
  if (!stopping) {
    say(`${first.name} exited (${first.code ?? first.signal}); stopping the rest`);
    await stop();
    return 1;
  }
  const all = await Promise.all(apps.map((a) => a.exited));
  const bad = all.filter((r) => r.code !== 0);
  if (bad.length > 0) say(`not all stopped cleanly: ${bad.map((r) => `${r.name} ${r.code ?? r.signal}`).join(', ')}`);
  else say('every process stopped');
  return bad.length > 0 ? 1 : 0;
}
