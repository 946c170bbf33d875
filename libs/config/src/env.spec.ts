import { loadResourceManagerSettings, loadWorkerSettings } from './app-settings.js';
import { ConfigError } from './config-error.js';
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

  it('reads the host a resource manager offers: slots, and the pools it may run with a limit each', () => {
    const all = loadResourceManagerSettings({ RM_HOST_SLOTS: '8' });
    expect(all.host.slots).toBe(8);
    // Every pool it scales (the example's gpu pool is MANUAL), up to the pool's max_workers.
    expect(Object.keys(all.host.pools)).toEqual(['cpu']);
    expect(loadResourceManagerSettings({ RM_HOST_POOLS: 'cpu=3' }).host.pools).toEqual({ cpu: 3 });
    expect(loadResourceManagerSettings({ RM_HOST_POOLS: 'cpu' }).host.pools).toEqual(all.host.pools);
    expect(() => loadResourceManagerSettings({ RM_HOST_POOLS: 'gpu=1' })).toThrow('RM_HOST_POOLS: "gpu" is not a pool this manager scales');
    expect(() => loadResourceManagerSettings({ RM_HOST_POOLS: 'cpu=-1' })).toThrow('RM_HOST_POOLS: cpu: the limit must be an integer');
    expect(() => loadResourceManagerSettings({ RM_HOST_SLOTS: '0' })).toThrow('RM_HOST_SLOTS');
  });
});
