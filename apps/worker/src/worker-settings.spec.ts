import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@fleet/config';
import { loadWorkerSettings } from './worker-settings.js';

const dir = mkdtempSync(join(tmpdir(), 'worker-settings-spec-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('worker settings: flags over WORKER_* variables, checked against the templates', () => {
  it('reads worker flags over variables, and checks them against the templates', () => {
    const s = loadWorkerSettings(['--pool', 'cpu', '--concurrency', '3'], { WORKER_POOL: 'gpu', WORKER_HEARTBEAT_MS: '250' });
    expect(s).toMatchObject({ pool: 'cpu', concurrency: 3, heartbeatMs: 250, lockMs: 10_000 });
    expect(s.workerId).toMatch(/-\d+-[0-9a-f]{4}$/);
  });

  it.each([
    [['--pool', 'cpu', '--concurrency', '0'], {}, 'WORKER_CONCURRENCY: must be an integer from 1 to 256'],
    [['--pool', 'cpu', '--colour', 'red'], {}, "command line: arguments: Unknown option '--colour'"],
    [[], {}, '--pool: is required'],
    [['--pool', 'cpu'], { WORKER_LOCK_MS: 'soon' }, 'WORKER_LOCK_MS: must be an integer'],
    [['--pool', 'cpu', '--id', 'a b'], {}, '--id: must be 1-100 letters'],
  ])('refuses %p %p', (argv, env, message) => {
    expect(() => loadWorkerSettings(argv, env)).toThrow(ConfigError);
    expect(() => loadWorkerSettings(argv, env)).toThrow(message);
  });

  it('a worker for a pool the templates do not define', () => {
    writeFileSync(join(dir, 'worker_templates.json'), JSON.stringify({ cpu: { provider: 'LOCAL', resources: { cpu: 1 }, capabilities: ['CPU'] } }));
    expect(() => loadWorkerSettings(['--pool', 'tpu'], { CONFIG_DIR: dir })).toThrow(
      '--pool: unknown pool "tpu"; worker_templates.json defines: cpu',
    );
  });
});
