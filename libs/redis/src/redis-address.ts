import type { RedisOptions } from 'ioredis';

/**
 * `REDIS_URL` names either one server (`redis://`, `rediss://`) or a master found through Redis Sentinel:
 * `redis+sentinel://[user:password@]host:port[,host:port...]/<master name>[/<db>]` (the credentials are the
 * master's; `?sentinelPassword=` gives the sentinels' own). With sentinels, ioredis asks them for the master,
 * follows a failover (it listens for `+switch-master`), and a connection that lands on a demoted master
 * (`READONLY`) reconnects.
 */
export function sentinelOptions(url: string): RedisOptions | undefined {
  const m = /^redis\+sentinel:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?]+)\/([^/?]+)(?:\/(\d+))?(?:\?(.*))?$/.exec(url);
  if (!m) return undefined;
  const [, user, password, hosts, name, db, query] = m;
  const params = new URLSearchParams(query ?? '');
  return {
    sentinels: hosts.split(',').map((h) => {
      const [host, port] = h.split(':');
      return { host, port: Number(port || 26379) };
    }),
    name: decodeURIComponent(name),
    ...(user && { username: decodeURIComponent(user) }),
    ...(password !== undefined && { password: decodeURIComponent(password) }),
    ...(db !== undefined && { db: Number(db) }),
    ...(params.get('sentinelPassword') !== null && { sentinelPassword: params.get('sentinelPassword') as string }),
    failoverDetector: true,
    reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 2 : false),
  };
}

export const isSentinelUrl = (url: string): boolean => url.startsWith('redis+sentinel://');
