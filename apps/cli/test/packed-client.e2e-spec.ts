import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@fleet/config';
import { clientsFile, cpuTemplate, isolatedSuite } from '@fleet/testing';

const NODE_JUNIT = ['node', '--test', '--test-reporter=junit', '--test-reporter-destination={junit_file}', '{test_file}'];

/** Runs a command to its end; resolves with its exit code and output. */
function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('the packed fleet client, installed into a project of its own', () => {
  const suite = isolatedSuite('packed-cli', { 'worker_templates.json': { ci: cpuTemplate({ runners: { test: { '.mjs': NODE_JUNIT } } }) } });
  const { file, tokens } = clientsFile({ ci: ['submit'] });
  let project: string;

  beforeAll(() => {
    project = mkdtempSync(join(tmpdir(), 'fleet-client-project-'));
    suite.onCleanup(() => rmSync(project, { recursive: true, force: true }));
  });

  it('npm pack makes a one-file client; installed offline in a fresh project it runs fleet run --build against a fleet, with a token and no Redis address', async () => {
    const packDir = join(project, 'pack');
    const tarball = execFileSync(process.execPath, [join(repoRoot(), 'scripts', 'pack-cli.mjs'), '--out', packDir], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .at(-1) as string;
    // A project that has never seen this repository: its own package.json, the tarball its only dependency.
    const app = join(project, 'app');
    mkdirSync(join(app, 'tests'), { recursive: true });
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'some-app', version: '1.0.0', private: true, type: 'module' }));
    for (let i = 0; i < 4; i++) writeFileSync(join(app, 'tests', `t${i}.test.mjs`), `import { test } from 'node:test';\ntest('t${i}', () => {});\n`);
    execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', tarball], { cwd: app, encoding: 'utf8' });
    const installed = JSON.parse(readFileSync(join(app, 'node_modules', 'redis-test-fleet-cli', 'package.json'), 'utf8')) as {
      dependencies?: object;
    };
    expect(installed.dependencies).toBeUndefined();
    // Nothing but the client in its node_modules (no Nest, no BullMQ, no ioredis).
    expect(existsSync(join(app, 'node_modules', 'ioredis'))).toBe(false);

    const tokensFile = join(suite.config.path, 'fleet-tokens.json');
    writeFileSync(tokensFile, JSON.stringify(file));
    const coordinator = await suite.service('coordinator', { FLEET_TOKENS_FILE: tokensFile, RUNS_TICK_MS: '200' });
    // The environment a CI node has: no REDIS_URL, PATH and HOME only, the coordinator's URL and a token.
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, COORDINATOR_URL: coordinator.url };
    const args = ['--no-install', 'fleet', 'run', 'tests/', '--build', 'packed-1', '--node-total', '1', '--slots', '2', '--junit', 'junit.xml'];

    const anonymous = await run('npx', args, app, env);
    expect([anonymous.code, anonymous.stderr]).toEqual([2, expect.stringMatching(/401[\s\S]*FLEET_TOKEN/)]);

    const served = await run('npx', args, app, { ...env, FLEET_TOKEN: tokens.ci });
    expect([served.code, served.stdout]).toEqual([0, expect.stringMatching(/: PASSED[\s\S]*4 file\(s\): 4 passed/)]);
    expect(served.stderr).toMatch(/this node ran 4 attempt\(s\) of 4 file/);
    expect(readFileSync(join(app, 'junit.xml'), 'utf8').match(/<testcase /g)).toHaveLength(4);
  });
});
