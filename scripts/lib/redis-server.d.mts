export declare const HOW_TO_GET_REDIS: string;
export declare function isRedisReachable(url: string, timeoutMs?: number): Promise<boolean>;
export declare function findRedisServer(env?: NodeJS.ProcessEnv): string | null;
export declare function freePort(): Promise<number>;
export interface PrivateRedis {
  url: string;
  port: number;
  pid: number;
  /** Ends the server by its PID (SIGTERM unless told otherwise) and removes its folder. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}
export declare function startRedisServer(opts?: { binary?: string | null; port?: number; timeoutMs?: number }): Promise<PrivateRedis>;
