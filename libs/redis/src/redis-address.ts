import type { ClusterNode, RedisOptions } from 'ioredis';

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

/**
 * `redis+cluster://[user:password@]host:port[,host:port...]` names a Redis Cluster by some of its nodes (the
 * client discovers the rest). The fleet keeps every key under one hash tag (`FLEET_PREFIX={fleet}`), so its
 * transactions and BullMQ's scripts stay in one slot.
 */
export function clusterAddress(url: string): { nodes: ClusterNode[]; username?: string; password?: string } | undefined {
  const m = /^redis\+cluster:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?]+)\/?$/.exec(url);
  if (!m) return undefined;
  const [, user, password, hosts] = m;
  return {
    nodes: hosts.split(',').map((h) => {
      const [host, port] = h.split(':');
      return { host, port: Number(port || 6379) };
    }),
    ...(user && { username: decodeURIComponent(user) }),
    ...(password !== undefined && { password: decodeURIComponent(password) }),
  };
}

export const isClusterUrl = (url: string): boolean => url.startsWith('redis+cluster://');
