import { loadCommonSettings } from './env.js';
import { DEFAULT_CONFIG_DIR } from './paths.js';

describe('environment settings', () => {
  it('defaults to the local Redis, the "fleet" prefix and the example config', () => {
    expect(loadCommonSettings({})).toEqual({
      redisUrl: 'redis://127.0.0.1:6379',
      prefix: 'fleet',
      spread: 'none',
      configDir: DEFAULT_CONFIG_DIR,
      shutdownGraceMs: 10_000,
    });
  });

  it('accepts a Sentinel or Cluster address, and a hash-tag prefix', () => {
    expect(loadCommonSettings({ REDIS_URL: 'redis+sentinel://a:26379,b:26379/mymaster' }).redisUrl).toBe('redis+sentinel://a:26379,b:26379/mymaster');
    expect(loadCommonSettings({ REDIS_URL: 'redis+cluster://a:7000,b:7001', FLEET_PREFIX: '{fleet}' }).prefix).toBe('{fleet}');
    expect(loadCommonSettings({ REDIS_URL: 'redis+cluster://a:7000', FLEET_PREFIX: '{fleet}', FLEET_SPREAD: 'pools' }).spread).toBe('pools');
  });

  it.each([
    [{ REDIS_URL: 'http://x' }, 'REDIS_URL: must be a redis:// or rediss:// URL'],
    [{ FLEET_PREFIX: 'a:b' }, 'FLEET_PREFIX: must be 1-64 letters'],
    [{ FLEET_PREFIX: '{a' }, 'FLEET_PREFIX: must be 1-64 letters'],
    [{ REDIS_URL: 'redis+cluster://127.0.0.1:7000' }, 'FLEET_PREFIX: on a Redis Cluster it must be a hash tag, e.g. {fleet}'],
    [{ REDIS_URL: 'redis+sentinel://127.0.0.1:26379' }, 'REDIS_URL: must be a redis:// or rediss:// URL'],
    [{ FLEET_SPREAD: 'shards' }, 'FLEET_SPREAD: must be none or pools'],
    [{ FLEET_SPREAD: 'pools', FLEET_PREFIX: 'fleet' }, 'FLEET_SPREAD: pools spread only under a hash-tag prefix: set FLEET_PREFIX={fleet}'],
  ])('refuses %p', (env, message) => {
    expect(() => loadCommonSettings(env)).toThrow(message);
  });
});
