import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeFailure } from '@fleet/contracts';
import { cpuTemplate, isAlive, isolatedSuite, waitFor } from '@fleet/testing';

/** A test that starts a process in a new session (as `setsid`, Node's `detached`, Python's `start_new_session` do), records its pid, then exits or hangs. */
const escaper = (name: string, opts: { hang: boolean; holdStdout: boolean; clearEnv?: boolean }) =>
  [
    "import { spawn } from 'node:child_process';",
    "import { writeFileSync } from 'node:fs';",
    `const c = spawn('sleep', ['300'], { detached: true, stdio: ['ignore', ${opts.holdStdout ? "'inherit'" : "'ignore'"}, 'ignore']${opts.clearEnv ? ', env: {}' : ''} });`,
    'c.unref();',
    `writeFileSync(${JSON.stringify(name)} + '.' + process.env.FLEET_TASK_ID + '.pid', String(c.pid));`,
    "console.log('started', c.pid);",
    opts.hang ? 'setInterval(() => {}, 1000);' : '',
  ].join('\n');

describe("a task's processes never outlive its attempt", () => {
  const suite = isolatedSuite('escape', {
    'worker_templates.json': {
      cpu: cpuTemplate({ concurrency: 2, runners: { test: { '.mjs': ['node', '{test_file}'] } } }),
      cg: cpuTemplate({ concurrency: 2, runners: { test: { '.mjs': ['node', '{test_file}'] } } }),
    },
    'exits.mjs': escaper('exits', { hang: false, holdStdout: true }),
    'hangs.mjs': escaper('hangs', { hang: true, holdStdout: false }),
    'clears-env.mjs': escaper('clears-env', { hang: false, holdStdout: false, clearEnv: true }),
  });
  const escapedPid = (name: string, taskId: string) =>
    waitFor(
      () =>
        existsSync(join(suite.config.path, `${name}.${taskId}.pid`)) &&
        Number(readFileSync(join(suite.config.path, `${name}.${taskId}.pid`), 'utf8')),
      {
        what: `${name} to record its escaped process`,
      },
    );
  const finished = (id: string, pool = 'cpu') =>
    waitFor(
      async () => {
        const j = await suite.queue(pool).job(id);
        return j && (j.state === 'completed' || j.state === 'failed') ? j : undefined;
      },
      // Bounded well below the escaped process's 300 s: an attempt must not wait for it.
      { what: `task ${id} to finish`, timeoutMs: 20_000 },
    );

  it('a test that exits leaving a process in a new session holding its stdout: the attempt ends at once, the process is killed (found by its cookie)', async () => {
    suite.worker({ pool: 'cpu', id: 'no-cgroup', env: { WORKER_CGROUP: 'off' } });
    const [id] = await suite.queue('cpu').add({ type: 'test', name: 'exits', config: { test_file: 'exits.mjs' } });
    const pid = await escapedPid('exits', id);
    expect((await finished(id)).state).toBe('completed');
    await waitFor(() => !isAlive(pid), { what: `escaped process ${pid} to be gone`, timeoutMs: 5000 });
  });

  it('a test that hangs after starting such a process: at timeout_ms plus the grace the attempt has failed and every process is gone', async () => {
    const [id] = await suite.queue('cpu').add({ type: 'test', name: 'hangs', timeout_ms: 1000, config: { test_file: 'hangs.mjs' } });
    const pid = await escapedPid('hangs', id);
    const { job, state } = await finished(id);
    expect(state).toBe('failed');
    expect(decodeFailure(job.failedReason)?.reason).toBe('timeout');
    await waitFor(() => !isAlive(pid), { what: `escaped process ${pid} to be gone`, timeoutMs: 5000 });
  });

  const cgroupCapable = existsSync('/sys/fs/cgroup/unified/cgroup.procs') || existsSync('/sys/fs/cgroup/cgroup.controllers');
  (cgroupCapable ? it : it.skip)('with a cgroup v2 (where the host offers one): even a process that cleared its environment is killed', async () => {
    suite.worker({ pool: 'cg', id: 'with-cgroup', env: { WORKER_CGROUP: 'auto' } });
    const [id] = await suite.queue('cg').add({ type: 'test', name: 'clears env', config: { test_file: 'clears-env.mjs' } });
    const pid = await escapedPid('clears-env', id);
    expect((await finished(id, 'cg')).state).toBe('completed');
    await waitFor(() => !isAlive(pid), { what: `escaped process ${pid} to be gone`, timeoutMs: 5000 });
  });
});
