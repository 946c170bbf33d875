import { resolve } from 'node:path';
import { z } from 'zod';
import { toFieldErrors } from '@fleet/contracts';
import { ConfigError } from './config-error.js';
import { DEFAULT_CONFIG_DIR } from './paths.js';

export type Env = Readonly<Record<string, string | undefined>>;

const blankToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);

export const envInt = (min: number, max: number, fallback: number) =>
  z.preprocess(
    (v) => (blankToUndefined(v) === undefined ? undefined : Number(v)),
    z
      .int({ error: `must be an integer from ${min} to ${max}` })
      .min(min, { error: `must be an integer from ${min} to ${max}` })
      .max(max, { error: `must be an integer from ${min} to ${max}` })
      .default(fallback),
  );

/** An optional integer: unset or blank gives undefined. */
export const envOptionalInt = (min: number, max: number) =>
  z.preprocess(
    (v) => (blankToUndefined(v) === undefined ? undefined : Number(v)),
    z
      .int({ error: `must be an integer from ${min} to ${max}` })
      .min(min, { error: `must be an integer from ${min} to ${max}` })
      .max(max, { error: `must be an integer from ${min} to ${max}` })
      .optional(),
  );

export const envString = (fallback: string) => z.preprocess(blankToUndefined, z.string().default(fallback));

const redisUrl = z.preprocess(
  blankToUndefined,
  z
    .string()
    .default('redis://127.0.0.1:6379')
    .refine((u) => /^(rediss?:\/\/[^\s]+|redis\+sentinel:\/\/[^\s/]+\/[^\s/]+.*|redis\+cluster:\/\/[^\s/]+\/?)$/.test(u), {
      error:
        'must be a redis:// or rediss:// URL, redis+sentinel://host:port[,host:port...]/<master name>, or redis+cluster://host:port[,host:port...]',
    }),
);

const prefix = z.preprocess(
  blankToUndefined,
  z
    .string()
    .regex(/^([A-Za-z0-9_-]{1,64}|\{[A-Za-z0-9_-]{1,64}\})$/, {
      error: 'must be 1-64 letters, digits, _ or -, or such a name in braces (a hash tag)',
    })
    .default('fleet'),
);

/** Parses environment variables with a schema whose keys are the variables' names. */
export function parseEnv<S extends z.ZodRawShape>(shape: S, env: Env): z.output<z.ZodObject<S>> {
  const parsed = z.object(shape).safeParse(env, { reportInput: true });
  if (!parsed.success) throw new ConfigError('environment', toFieldErrors(parsed.error, 'environment'));
  return parsed.data;
}

export interface CommonSettings {
  redisUrl: string;
  /** Every Redis key of this fleet starts with `<prefix>:`; runs that share a Redis keep apart by prefix. */
  prefix: string;
  /** `pools`: each pool's queue keys under a hash tag of their own, so pools spread over a cluster's masters. */
  spread: 'none' | 'pools';
  configDir: string;
  /**
   * After SIGTERM or SIGINT, how long an app may take to close before it exits anyway. For a worker, the time
   * recording its tasks' outcomes may take once they have finished running (the tasks themselves run to
   * their end, bounded by their own timeouts).
   */
  shutdownGraceMs: number;
}

export function loadCommonSettings(env: Env): CommonSettings {
  const e = parseEnv(
    {
      REDIS_URL: redisUrl,
      FLEET_PREFIX: prefix,
      FLEET_SPREAD: z.preprocess(blankToUndefined, z.enum(['none', 'pools'], { error: 'must be none or pools' }).default('none')),
      CONFIG_DIR: envString(DEFAULT_CONFIG_DIR),
      SHUTDOWN_GRACE_MS: envInt(0, 3_600_000, 10_000),
    },
    env,
  );
  if (e.FLEET_SPREAD === 'pools' && !e.FLEET_PREFIX.startsWith('{')) {
    throw new ConfigError('environment', [
      {
        field: 'FLEET_SPREAD',
        reason: `pools spread only under a hash-tag prefix: set FLEET_PREFIX={${e.FLEET_PREFIX}} (each pool's keys then go under {${e.FLEET_PREFIX}:<pool>})`,
      },
    ]);
  }
  if (e.REDIS_URL.startsWith('redis+cluster://') && !e.FLEET_PREFIX.startsWith('{')) {
    throw new ConfigError('environment', [
      {
        field: 'FLEET_PREFIX',
        reason: `on a Redis Cluster it must be a hash tag, e.g. {${e.FLEET_PREFIX}}: every key of the fleet then sits in one slot, as its transactions and BullMQ's scripts need`,
      },
    ]);
  }
  return {
    redisUrl: e.REDIS_URL,
    prefix: e.FLEET_PREFIX,
    spread: e.FLEET_SPREAD,
    configDir: resolve(e.CONFIG_DIR),
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
  };
}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** How an app logs: `LOG_LEVEL`, and `LOG_FORMAT` (`json` lines, `pretty` lines, or `auto`: pretty on a terminal). */
export interface LogSettings {
  level: LogLevel;
  format: 'json' | 'pretty';
}

export function loadLogSettings(env: Env, stdoutIsTerminal: boolean): LogSettings {
  const e = parseEnv(
    {
      LOG_LEVEL: z.preprocess(
        (v) => (typeof blankToUndefined(v) === 'string' ? (v as string).toLowerCase() : undefined),
        z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
      ),
      LOG_FORMAT: z.preprocess(blankToUndefined, z.enum(['json', 'pretty', 'auto'], { error: 'must be json, pretty or auto' }).default('auto')),
    },
    env,
  );
  return { level: e.LOG_LEVEL, format: e.LOG_FORMAT === 'auto' ? (stdoutIsTerminal ? 'pretty' : 'json') : e.LOG_FORMAT };
}
