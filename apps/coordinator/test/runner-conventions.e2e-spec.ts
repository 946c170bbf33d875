import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '@fleet/config';
import { cpuTemplate, isolatedSuite, type Service, waitFor } from '@fleet/testing';

/** A Python with pytest: the one on PATH, else Debian's. */
function pythonWithPytest(): string {
  for (const python of ['python3', '/usr/bin/python3']) if (spawnSync(python, ['-m', 'pytest', '--version']).status === 0) return python;
  throw new Error("no python3 with pytest: install Debian's python3-pytest (apt-get install -y python3-pytest)");
}

interface RunView {
  state: string;
  counts: Record<string, number>;
  files: Array<{ key: string; state: string; reason: string | null; cases: Array<{ name: string; status: string; message?: string }> }>;
}

describe("runner conventions: a runner's exit code means what the runner says it means", () => {
  const python = pythonWithPytest();
  const suite = isolatedSuite('conventions', {
    'worker_templates.json': {
      cpu: cpuTemplate({
        concurrency: 2,
        runners: {
          test: {
            '.py': [python, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '--junitxml={junit_file}', '{test_file}'],
            '.sh': ['sh', '{test_file}'],
          },
          // This runner says 3 when it found nothing to run.
          exit_codes: { '.sh': { '3': 'skipped' } },
        },
      }),
    },
    'py/test_skips_itself.py': 'import pytest\npytest.skip("needs a GPU", allow_module_level=True)\n\ndef test_never():\n    assert False\n',
    'py/test_passes.py': 'def test_adds():\n    assert 1 + 1 == 2\n',
    'py/test_fails.py': 'def test_adds():\n    assert 1 + 1 == 3\n',
    'sh/nothing.sh': 'echo "no test here"\nexit 3\n',
    'sh/broken.sh': 'exit 4\n',
  });
  let coordinator: Service;

  beforeAll(async () => {
    coordinator = await suite.service('coordinator', { RUNS_TICK_MS: '200' });
    suite.worker({ pool: 'cpu', id: 'w1' });
  });

  it("pytest's no-tests exit and a declared code are skipped, not failed; other codes still fail", async () => {
    const created = await coordinator.http
      .post('/runs')
      .send({ name: 'conventions', tests: ['py/', 'sh/'] })
      .expect(201);
    const run = await waitFor(
      async () => {
        const r = (await coordinator.http.get(`/runs/${created.body.id}`).expect(200)).body as RunView & { finished_at: string | null };
        return r.finished_at !== null ? r : undefined;
      },
      { what: 'the run to finish', timeoutMs: 120_000, intervalMs: 200 },
    );
    const states = Object.fromEntries(run.files.map((f) => [f.key, f.state]));
    expect(states).toEqual({
      'py/test_skips_itself.py': 'skipped',
      'py/test_passes.py': 'passed',
      'py/test_fails.py': 'failed',
      'sh/nothing.sh': 'skipped',
      'sh/broken.sh': 'failed',
    });
    expect(run.counts).toMatchObject({ total: 5, done: 5, skipped: 2, passed: 1, failed: 2 });
    // The file's view says why it counts as skipped.
    const withCases = (await coordinator.http.get(`/runs/${created.body.id}?cases=true`).expect(200)).body as RunView;
    const nothing = withCases.files.find((f) => f.key === 'sh/nothing.sh');
    expect(nothing?.cases).toEqual([expect.objectContaining({ status: 'skipped', message: 'the runner ran no test (exit 3)' })]);
    expect(run.state).toBe('failed');
  });

  it("reads exit codes the same way on CI nodes (fleet run --build) as on the pool's workers", async () => {
    // This checkout is the suite's folder; the node runs every file itself.
    const cli = spawn(
      process.execPath,
      [join(repoRoot(), 'dist/apps/cli/src/main.js'), 'run', 'py/', 'sh/', '--build', 'conventions-ci', '--slots', '2'],
      {
        cwd: suite.config.path,
        env: { ...process.env, COORDINATOR_URL: coordinator.url },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    cli.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const code = await new Promise<number | null>((resolve) => cli.on('exit', resolve));
    expect(code).toBe(1);
    const id = /run (r-[a-z0-9-]+)/.exec(stderr)?.[1];
    const run = (await coordinator.http.get(`/runs/${id}`).expect(200)).body as RunView;
    expect(Object.fromEntries(run.files.map((f) => [f.key, f.state]))).toEqual({
      'py/test_skips_itself.py': 'skipped',
      'py/test_passes.py': 'passed',
      'py/test_fails.py': 'failed',
      'sh/nothing.sh': 'skipped',
      'sh/broken.sh': 'failed',
    });
    expect(run.counts).toMatchObject({ total: 5, skipped: 2, passed: 1, failed: 2 });
  });
});
