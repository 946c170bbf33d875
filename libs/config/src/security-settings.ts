import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { toFieldErrors } from '@fleet/contracts';
import { ConfigError } from './config-error.js';
import { type Env, envInt, envString, parseEnv } from './env.js';
import { readJsonFile } from './json-file.js';

export const CLIENTS_FILE = 'clients.json';

/** What a client may do: `submit` tasks (and runs) and read or cancel its own; `operate` the fleet; `read` everything. */
export const ROLES = ['submit', 'operate', 'read'] as const;
export type Role = (typeof ROLES)[number];

export interface Client {
  name: string;
  roles: ReadonlySet<Role>;
}

const CLIENT_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

const ClientsFileSchema = z.strictObject({
  clients: z.record(
    z.string().regex(CLIENT_NAME, { error: 'client names are 1-64 letters, digits, _ . or -' }),
    z.strictObject({
      roles: z.array(z.enum(ROLES, { error: `must be one of ${ROLES.join(', ')}` })).min(1, { error: 'must name at least one role' }),
      token_sha256: z
        .string()
        .regex(/^[0-9a-f]{64}$/, { error: 'must be the SHA-256 of the token, 64 lowercase hex digits (npm run fleet -- token new)' }),
    }),
  ),
});

export const hashToken = (token: string): Buffer => createHash('sha256').update(token, 'utf8').digest();

/** A client of the clients file: its name, roles and the SHA-256 of its token (no token is stored). */
export interface ClientEntry {
  name: string;
  roles: readonly Role[];
  tokenSha256: string;
}

/** The clients file, checked: every field, and no token hash shared by two clients. Checking tokens is @fleet/auth's TokenStore. */
export function loadClientsFile(path: string): ClientEntry[] {
  const parsed = ClientsFileSchema.safeParse(readJsonFile(path), { reportInput: true });
  if (!parsed.success) throw new ConfigError(CLIENTS_FILE, toFieldErrors(parsed.error, '(file)'));
  const entries = Object.entries(parsed.data.clients).map(([name, c]) => ({ name, roles: c.roles, tokenSha256: c.token_sha256 }));
  const hashes = new Set<string>();
  for (const e of entries) {
    if (hashes.has(e.tokenSha256))
      throw new ConfigError(CLIENTS_FILE, [{ field: `clients.${e.name}.token_sha256`, reason: 'is shared with another client' }]);
    hashes.add(e.tokenSha256);
  }
  return entries;
}

/** Whether a bind address only accepts connections from this machine. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host === '0:0:0:0:0:0:0:1';
}

export interface SecuritySettings {
  /** The address the HTTP app binds to. */
  host: string;
  /** Null when no clients file is configured: then every request is `anonymous` with every role (loopback only). */
  clients: ClientEntry[] | null;
  /** Requests per client per minute (429 with Retry-After beyond). */
  rateLimitPerMinute: number;
  /** Tasks one client may have queued in one pool (429 beyond). */
  maxQueuedPerClient: number;
  /** Origins allowed to call the API from a browser; none by default. */
  corsOrigins: string[];
  /** FLEET_INSECURE=1: reachable beyond this machine without tokens, on purpose. */
  insecure: boolean;
}

/**
 * Who may reach an HTTP app and what they may do. Binds to 127.0.0.1 unless `HOST` (or `<APP>_HOST`) says
 * otherwise; an app bound beyond loopback with no clients file refuses to start unless `FLEET_INSECURE=1`.
 */
export function loadSecuritySettings(
  env: Env,
  configDir: string,
  app: 'COORDINATOR' | 'RESOURCE_MANAGER' | 'TREND_ANALYZER' | 'WORKER' | 'DASHBOARD',
): SecuritySettings {
  const e = parseEnv(
    {
      HOST: envString('127.0.0.1'),
      [`${app}_HOST`]: envString(''),
      FLEET_TOKENS_FILE: envString(''),
      FLEET_INSECURE: z.enum(['0', '1', ''], { error: 'must be 1 (accept an app reachable beyond this machine without tokens) or 0' }).default(''),
      RATE_LIMIT_PER_MINUTE: envInt(1, 1_000_000, 6000),
      MAX_QUEUED_PER_CLIENT: envInt(1, 10_000_000, 100_000),
      CORS_ORIGINS: envString(''),
    },
    env,
  ) as Record<string, string | number>;
  const host = (e[`${app}_HOST`] as string) || (e.HOST as string);
  const explicit = e.FLEET_TOKENS_FILE as string;
  const path = explicit ? resolve(explicit) : join(configDir, CLIENTS_FILE);
  if (explicit && !existsSync(path)) throw new ConfigError('environment', [{ field: 'FLEET_TOKENS_FILE', reason: `${path} does not exist` }]);
  const clients = existsSync(path) ? loadClientsFile(path) : null;
  if (!clients?.length && !isLoopback(host) && e.FLEET_INSECURE !== '1') {
    throw new ConfigError('environment', [
      {
        field: `${app}_HOST`,
        reason: `binds to ${host}, beyond this machine, but no client tokens are configured (${CLIENTS_FILE} in CONFIG_DIR or FLEET_TOKENS_FILE); anyone who can reach it could run commands. Add tokens (npm run fleet -- token new), or set FLEET_INSECURE=1 if that is on purpose`,
      },
    ]);
  }
  const origins = (e.CORS_ORIGINS as string)
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  return {
    host,
    clients: clients?.length ? clients : null,
    rateLimitPerMinute: e.RATE_LIMIT_PER_MINUTE as number,
    maxQueuedPerClient: e.MAX_QUEUED_PER_CLIENT as number,
    corsOrigins: origins,
    insecure: e.FLEET_INSECURE === '1',
  };
}

/** A Redis URL as it may be logged: the password replaced. */
export function redactUrl(url: string): string {
  return url.replace(/^(rediss?:\/\/)([^:@/]*):([^@/]*)@/, '$1$2:***@');
}
