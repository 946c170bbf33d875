export declare const HOW_TO_GET_REDIS: string;
export declare function isRedisReachable(url: string, timeoutMs?: number): Promise<boolean>;
export declare function findRedisServer(env?: NodeJS.ProcessEnv): string | null;
/** A free port on 127.0.0.1; under a test run (FLEET_PORT_DIR) claimed once for the whole run. */
export declare function freePort(): Promise<number>;
export interface PrivateRedis {
  url: string;
  port: number;
  readonly pid: number;
  /** Ends the server by its PID (SIGTERM unless told otherwise) and removes its folder. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Stops the server and keeps its folder: Redis is away until `start()`. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and folder (with its data when it has an append-only file). */
  start(): Promise<void>;
  restart(signal?: NodeJS.Signals): Promise<void>;
}
export declare function startRedisServer(opts?: {
  binary?: string | null;
  port?: number;
  timeoutMs?: number;
  /** An append-only file with this fsync policy; memory-only when absent. */
  appendonly?: 'always' | 'everysec';
  extraArgs?: string[];
  /** Run as a Redis Sentinel monitoring the master at 127.0.0.1:masterPort under masterName. */
  sentinel?: { masterName: string; masterPort: number; quorum?: number; downAfterMs?: number; failoverTimeoutMs?: number };
}): Promise<PrivateRedis>;
export declare function redactUrl(url: string): string;
export declare function fleetAclRules(...keyPatterns: string[]): string[];
export declare function startRedisCluster(opts?: {
  masters?: number;
  timeoutMs?: number;
}): Promise<{ url: string; nodes: PrivateRedis[]; stop: () => Promise<void> }>;
