import { EXIT_CONFIG_ERROR } from '@fleet/app';
import { TEST_REDIS_URL, makeConfigDir, startApp } from '@fleet/testing';
import { fastAnalyzerConfig } from './analyzer-harness.js';

// Every message of the loader is pinned by libs/config/src/config-files.spec.ts; this run pins what the process does with one.
describe('a bad performance_analyzer_config.json stops start-up with the key and the reason', () => {
  it('exits 78 (EX_CONFIG), naming the file, the key and the reason', async () => {
    const dir = makeConfigDir({ 'performance_analyzer_config.json': { ...fastAnalyzerConfig(), history_window: 0 } });
    try {
      const proc = startApp('trend-analyzer', [], { REDIS_URL: TEST_REDIS_URL, CONFIG_DIR: dir.path, TREND_ANALYZER_PORT: '0' });
      expect((await proc.exited).code).toBe(EXIT_CONFIG_ERROR);
      expect(proc.output()).toContain('configuration error in performance_analyzer_config.json:');
      expect(proc.output()).toContain('- history_window: must be at least 20 samples');
    } finally {
      dir.remove();
    }
  });
});
