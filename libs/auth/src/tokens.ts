/** Injection token of the app's SecuritySettings. */
export const SECURITY_SETTINGS = Symbol('SECURITY_SETTINGS');
/** Injection token of the Redis connection rate limits are kept in. */
export const LIMITS_REDIS = Symbol('LIMITS_REDIS');
/** Injection token of the fleet's FleetKeys, which names the rate-limit counters (`<fleet prefix>:rl:<client>`). */
export const LIMITS_KEYS = Symbol('LIMITS_KEYS');
