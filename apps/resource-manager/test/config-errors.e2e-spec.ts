import { EXIT_CONFIG_ERROR } from '@fleet/app';
import { TEST_REDIS_URL, cpuTemplate, makeConfigDir, startApp } from '@fleet/testing';

// Every message of the loader is pinned by libs/config/src/config-files.spec.ts; this run pins what the process does with one.
describe('a bad resource_manager_config.json stops start-up with the file, the key and the reason', () => {
  it('exits 78 (EX_CONFIG), naming the file, the key and the reason', async () => {
    const dir = makeConfigDir({
      'worker_templates.json': { cpu: cpuTemplate() },
      'resource_manager_config.json': { min_workers: 5, max_workers: 2 },
    });
    try {
      const proc = startApp('resource-manager', [], { REDIS_URL: TEST_REDIS_URL, CONFIG_DIR: dir.path, RESOURCE_MANAGER_PORT: '0' });
      expect((await proc.exited).code).toBe(EXIT_CONFIG_ERROR);
      expect(proc.output()).toContain('configuration error in resource_manager_config.json:');
      expect(proc.output()).toContain('- min_workers: 5 is above max_workers 2');
    } finally {
      dir.remove();
    }
  });
});
