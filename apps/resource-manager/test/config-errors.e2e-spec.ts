import { EXIT_CONFIG_ERROR } from '@fleet/app';
import { TEST_REDIS_URL, cleanupPrefix, cpuTemplate, makeConfigDir, startApp, testRedis, uniquePrefix, waitFor } from '@fleet/testing';

describe('a bad resource_manager_config.json stops start-up with the file, the key and the reason', () => {
  it.each([
    ['min above max', { min_workers: 5, max_workers: 2 }, 'min_workers: 5 is above max_workers 2'],
    ['min above max for one pool', { pools: { cpu: { min_workers: 3, max_workers: 1 } } }, 'pools.cpu.min_workers: 3 is above max_workers 1'],
    ['a negative cooldown', { scale_down_cooldown: -10 }, 'scale_down_cooldown: must not be negative'],
    ['an unknown strategy', { scaling_strategy: 'RANDOM' }, 'scaling_strategy: must be one of STATIC, STEPWISE, ADAPTIVE, PREDICTIVE'],
    ['a wrong type', { max_workers: 'ten' }, 'max_workers: must be a whole number from 0 to 1000'],
    ['a zero polling interval', { polling_interval: 0 }, 'polling_interval: must be greater than 0'],
    ['an unknown key', { max_wrokers: 3 }, 'max_wrokers: unknown field'],
    ['an unknown pool', { pools: { tpu: { max_workers: 1 } } }, 'pools.tpu: no such pool in worker_templates.json'],
  ])('%s', async (_label, rmConfig, message) => {
    const dir = makeConfigDir({ 'worker_templates.json': { cpu: cpuTemplate() }, 'resource_manager_config.json': rmConfig });
    try {
      const proc = startApp('resource-manager', [], { REDIS_URL: TEST_REDIS_URL, CONFIG_DIR: dir.path, RESOURCE_MANAGER_PORT: '0' });
      expect((await proc.exited).code).toBe(EXIT_CONFIG_ERROR);
      expect(proc.output()).toContain('configuration error in resource_manager_config.json:');
      expect(proc.output()).toContain(`- ${message}`);
    } finally {
      dir.remove();
    }
  });

  it('reports the seed keys it accepts but does not act on', async () => {
    const dir = makeConfigDir({
      'worker_templates.json': { cpu: cpuTemplate() },
      'resource_manager_config.json': { cost_optimization_weight: 0.5, preferred_regions: ['us-east-1'], max_workers: 1 },
    });
    const prefix = uniquePrefix('warn');
    const redis = testRedis();
    try {
      const proc = startApp('resource-manager', [], {
        REDIS_URL: TEST_REDIS_URL,
        CONFIG_DIR: dir.path,
        RESOURCE_MANAGER_PORT: '0',
        FLEET_PREFIX: prefix,
      });
      await waitFor(() => /cost_optimization_weight, preferred_regions accepted but without effect/.test(proc.output()), { what: 'the warning' });
      expect(await proc.stop()).toEqual({ code: 0, signal: null });
    } finally {
      await cleanupPrefix(redis, prefix);
      await redis.quit();
      dir.remove();
    }
  });
});
