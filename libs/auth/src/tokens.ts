/** Injection token of the app's SecuritySettings. */
export const SECURITY_SETTINGS = Symbol('SECURITY_SETTINGS');
/** Injection token of the Redis connection rate limits are kept in. */
export const LIMITS_REDIS = Symbol('LIMITS_REDIS');
/** Injection token of the key prefix rate-limit counters live under (`<fleet prefix>:rl`). */
export const LIMITS_PREFIX = Symbol('LIMITS_PREFIX');
