// Runs the fleet's apps as child processes with prefixed logs, and stops them all on Ctrl-C.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const say = (msg) => process.stderr.write(`[fleet] ${msg}\n`);

function startApp(root, name, args, env) {
  const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => process.stdout.write(`[${name}] ${line}\n`));
  }
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { name, child, exited };
}

async function waitForHealth(url, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(`${url}/health`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`coordinator at ${url} not healthy after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function submitExamples(url, root) {
  const body = readFileSync(join(root, 'examples', 'config', 'test_tasks.json'), 'utf8');
  const res = await fetch(`${url}/tasks/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const json = await res.json();
  if (res.status !== 201) throw new Error(`submission refused: ${res.status} ${JSON.stringify(json)}`);
  say(`submitted ${json.ids.length} example tasks`);
  const deadline = Date.now() + 120_000;
  for (;;) {
    const views = await Promise.all(json.ids.map((id) => fetch(`${url}/tasks/${id}`).then((r) => r.json())));
    if (views.every((v) => ['completed', 'failed', 'cancelled'].includes(v.state)) || Date.now() > deadline) {
      for (const v of views) say(`  ${v.state.padEnd(9)} ${String(v.timings.run_ms ?? '-').padStart(6)} ms  ${v.type.padEnd(9)} ${v.name}`);
      return;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

export async function runFleet({ root, redisUrl }) {
  const env = { ...process.env, REDIS_URL: redisUrl };
  const port = env.COORDINATOR_PORT || '8080';
  const url = `http://127.0.0.1:${port}`;
  const apps = [
    startApp(root, 'coordinator', ['dist/apps/coordinator/src/main.js'], env),
    startApp(root, 'worker', ['dist/apps/worker/src/main.js', '--pool', 'cpu'], env),
  ];
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    say('stopping the fleet');
    for (const a of apps) a.child.kill('SIGTERM');
    const timer = setTimeout(() => apps.forEach((a) => a.child.kill('SIGKILL')), 15_000);
    await Promise.all(apps.map((a) => a.exited));
    clearTimeout(timer);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const firstExit = Promise.race(apps.map((a) => a.exited.then((r) => ({ ...r, name: a.name }))));
  try {
    await waitForHealth(url, 30_000);
    await submitExamples(url, root);
    say(`the fleet is running: coordinator at ${url}; Ctrl-C stops it`);
  } catch (err) {
    say(String(err.message ?? err));
    await stop();
    return 1;
  }
  const first = await firstExit;
  if (!stopping) {
    say(`${first.name} exited (${first.code ?? first.signal}); stopping the rest`);
    await stop();
    return 1;
  }
  await Promise.all(apps.map((a) => a.exited));
  return 0;
}
