import { clusterAddress, sentinelOptions } from './redis-address.js';

describe('Redis addresses', () => {
  it('reads sentinels, the master name, credentials and db from a redis+sentinel URL', () => {
    const o = sentinelOptions('redis+sentinel://fleet:s%40cret@10.0.0.1:26379,10.0.0.2/mymaster/2?sentinelPassword=sp');
    expect(o).toMatchObject({
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: '10.0.0.2', port: 26379 },
      ],
      name: 'mymaster',
      username: 'fleet',
      password: 's@cret',
      db: 2,
      sentinelPassword: 'sp',
      failoverDetector: true,
    });
    expect(sentinelOptions('redis://127.0.0.1:6379')).toBeUndefined();
  });

  it('reconnects from a demoted master (READONLY) only', () => {
    const o = sentinelOptions('redis+sentinel://h:1/m');
    const reconnect = o?.reconnectOnError as (err: Error) => boolean | 1 | 2;
    expect(reconnect(new Error("READONLY You can't write against a read only replica."))).toBe(2);
    expect(reconnect(new Error('ERR other'))).toBe(false);
  });

  it('reads cluster nodes and credentials from a redis+cluster URL', () => {
    expect(clusterAddress('redis+cluster://u:p@127.0.0.1:7000,127.0.0.1:7001')).toEqual({
      nodes: [
        { host: '127.0.0.1', port: 7000 },
        { host: '127.0.0.1', port: 7001 },
      ],
      username: 'u',
      password: 'p',
    });
    expect(clusterAddress('redis://x')).toBeUndefined();
  });
});
