import { EXIT_CONFIG_ERROR } from '@fleet/app';
import { FleetKeys } from '@fleet/redis';
import {
  type ConfigDir,
  TEST_REDIS_URL,
  cleanupPrefix,
  cpuTemplate,
  makeConfigDir,
  startApp,
  testRedis,
  uniquePrefix,
  waitFor,
} from '@fleet/testing';

describe('a bad worker_templates.json stops start-up with a message naming the file, the template and the field', () => {
  let config: ConfigDir;

  beforeAll(() => {
    config = makeConfigDir({
      'worker_templates.json': {
        cpu: cpuTemplate(),
        'gpu-worker': {
          provider: 'LOCAL',
          resources: { cpu: 'four', gpu: 1 },
          capabilities: ['GPU'],
          runners: { test: { '.mjs': ['node', '{tset_file}'] } },
        },
      },
    });
  });
  afterAll(() => config.remove());

  // Every message of the loaders is pinned by libs/config/src/config-files.spec.ts; these runs pin what each process does with one.
  it('the coordinator exits 78 (EX_CONFIG), naming the file, the template and the field', async () => {
    const proc = startApp('coordinator', [], { REDIS_URL: TEST_REDIS_URL, FLEET_PREFIX: uniquePrefix('cfg'), CONFIG_DIR: config.path });
    const status = await proc.exited;
    expect(status.code).toBe(EXIT_CONFIG_ERROR);
    expect(proc.output()).toContain('configuration error in worker_templates.json:');
    expect(proc.output()).toContain('- template gpu-worker: resources.cpu: must be a whole number of CPUs');
    expect(proc.output()).toMatch(/template gpu-worker: runners.test\[".mjs"\]: unknown placeholder \{tset_file\}/);
  });

  it('a worker for a pool the templates do not define exits 78', async () => {
    const good = makeConfigDir({ 'worker_templates.json': { cpu: cpuTemplate() } });
    try {
      const proc = startApp('worker', ['--pool', 'tpu'], { REDIS_URL: TEST_REDIS_URL, CONFIG_DIR: good.path });
      expect((await proc.exited).code).toBe(EXIT_CONFIG_ERROR);
      expect(proc.output()).toContain('--pool: unknown pool "tpu"; worker_templates.json defines: cpu');
    } finally {
      good.remove();
    }
  });

  it('an app whose FLEET_SPREAD differs from the layout its fleet recorded', async () => {
    const good = makeConfigDir({ 'worker_templates.json': { cpu: cpuTemplate() } });
    const redis = testRedis();
    const prefix = `{${uniquePrefix('layout')}}`;
    const env = { REDIS_URL: TEST_REDIS_URL, FLEET_PREFIX: prefix, CONFIG_DIR: good.path };
    const spread = startApp('worker', ['--pool', 'cpu'], { ...env, FLEET_SPREAD: 'pools' });
    try {
      // The first app of the fleet records its layout ...
      await waitFor(async () => (await redis.get(new FleetKeys(prefix).layout)) === 'pools', { what: 'the layout recorded' });
      // ... and one on the other layout (it would wait on a queue nobody fills) refuses to start.
      const other = startApp('worker', ['--pool', 'cpu'], env);
      expect((await other.exited).code).toBe(EXIT_CONFIG_ERROR);
      expect(other.output()).toContain(`FLEET_SPREAD: is "none", but fleet ${prefix} lays its keys out as "pools"`);
    } finally {
      await spread.stop();
      await cleanupPrefix(redis, prefix);
      redis.disconnect();
      good.remove();
    }
  });
});
