import type { AddressInfo } from 'node:net';
import { type DynamicModule, type INestApplication, Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { json } from 'body-parser';
import helmet from 'helmet';
import { isLoopback, redactUrl, type SecuritySettings } from '@fleet/config';
import { type ErrorBody, statusText } from './http-errors.js';
import { HttpExceptionFilter } from './http-exception.filter.js';
import { loggerService } from './logging.js';

/** Deepest nesting a JSON body may have: the task contract needs five levels; a hostile body gets 400. */
export const MAX_JSON_DEPTH = 16;
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

interface Req {
  body?: unknown;
  on(event: 'end' | 'error', listener: () => void): void;
  resume(): void;
  headers: Record<string, string | string[] | undefined>;
  socket: { localPort?: number };
}
interface Res {
  status(code: number): Res;
  json(body: ErrorBody): void;
  setHeader(name: string, value: string): void;
}

/** The body of a refusal made before any handler runs (the Host check, a body without a token, a hostile body). */
export const refusal = (status: number, field: string, reason: string): ErrorBody => ({
  statusCode: status,
  error: statusText(status),
  message: `${field}: ${reason}`,
  errors: [{ field, reason }],
});

const refuse = (res: Res, status: number, field: string, reason: string) => res.status(status).json(refusal(status, field, reason));

/**
 * Why a request's `Host` is refused by an app bound to loopback (a page on another site cannot reach the API
 * through DNS rebinding), or undefined when it names this app's own loopback address.
 */
export function foreignHost(host: string | string[] | undefined, port: number | undefined): string | undefined {
  const name = typeof host === 'string' ? host.toLowerCase() : '';
  if ([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`].includes(name)) return undefined;
  return `"${name}" is not this app's address (bound to loopback; a request for another name is refused, against DNS rebinding)`;
}

/** Whether a request's headers announce a body. */
export const announcesBody = (headers: Record<string, string | string[] | undefined>): boolean => {
  const length = headers['content-length'];
  return (length !== undefined && length !== '0') || headers['transfer-encoding'] !== undefined;
};

export const UNREAD_BODY_REASON = 'a valid token is required: send "Authorization: Bearer <token>" (the body was not read)';

/**
 * For a body refused before it is read: drains it unparsed as it arrives (so the client can read the answer), and
 * answers once it has all come, bounded by the server's request timeout.
 */
export function answerAfterBody(req: Pick<Req, 'on' | 'resume'>, answer: () => void): void {
  req.on('end', answer);
  req.on('error', () => undefined);
  req.resume();
}

/**
 * The first place a parsed body nests too deep or uses a key that reaches into prototypes, as a path. One pass
 * over the values, linear in their number: a path is built only for the value at fault, from its parents.
 */
export function unsafeJson(body: unknown): { field: string; reason: string } | undefined {
  interface Entry {
    value: unknown;
    depth: number;
    parent: Entry | undefined;
    key: string | number;
  }
  const pathOf = (e: Entry | undefined, last?: string): string => {
    const parts: string[] = last === undefined ? [] : [`.${last}`];
    for (let at = e; at?.parent; at = at.parent) parts.push(typeof at.key === 'number' ? `[${at.key}]` : `.${at.key}`);
    return `body${parts.reverse().join('')}`;
  };
  const stack: Entry[] = [{ value: body, depth: 0, parent: undefined, key: '' }];
  while (stack.length > 0) {
    const e = stack.pop() as Entry;
    const value = e.value;
    if (typeof value !== 'object' || value === null) continue;
    if (e.depth >= MAX_JSON_DEPTH) return { field: pathOf(e), reason: `nested deeper than ${MAX_JSON_DEPTH} levels` };
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const v: unknown = value[i];
        if (typeof v === 'object' && v !== null) stack.push({ value: v, depth: e.depth + 1, parent: e, key: i });
      }
    } else {
      for (const k in value) {
        if (!Object.hasOwn(value, k)) continue;
        if (FORBIDDEN_KEYS.has(k)) return { field: pathOf(e, k), reason: 'is not an allowed key' };
        const v = (value as Record<string, unknown>)[k];
        if (typeof v === 'object' && v !== null) stack.push({ value: v, depth: e.depth + 1, parent: e, key: k });
      }
    }
  }
  return undefined;
}

/**
 * helmet's defaults, but for upgrade-insecure-requests: a fleet served over plain HTTP inside a private network
 * (the dashboard, /docs) must not have its own requests rewritten to https.
 */
export const HELMET_OPTIONS = { contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } } };

/** Bodies of routes not named in `largeBodies` are read up to this many bytes. */
export const SMALL_BODY_BYTES = 64 * 1024;

export interface HttpAppOptions {
  /** The body limit of the routes in `largeBodies` (every other route: SMALL_BODY_BYTES, or less). */
  bodyLimitBytes: number;
  /** `METHOD /path` of the routes that take large bodies (a batch of tasks, a run). */
  largeBodies?: readonly string[];
  security: SecuritySettings;
  /**
   * Whether the `Authorization` header belongs to a known client. With it, a request that carries a body and no
   * valid token is refused before a byte of the body is read or parsed (a body costs CPU and memory; a token
   * check does not).
   */
  admits?: (authorization: string | undefined) => boolean;
  /** Paths whose bodies are left unread (forwarded as they are by a proxy). */
  unparsed?: (path: string) => boolean;
}

/**
 * Hardening every HTTP app of the fleet shares: security headers (helmet), no CORS unless origins are
 * configured, a `Host` check while bound to loopback (a page on another site cannot reach the API through
 * DNS rebinding), no body read before its sender is authenticated, JSON bodies up to their route's limit no
 * deeper than MAX_JSON_DEPTH and without prototype keys, one error shape for everything, no `X-Powered-By`.
 */
export function configureHttpApp(app: INestApplication, opts: HttpAppOptions): void {
  const express = app as NestExpressApplication;
  express.disable('x-powered-by');
  express.use(helmet(HELMET_OPTIONS));
  if (opts.security.corsOrigins.length > 0) express.enableCors({ origin: opts.security.corsOrigins });
  if (isLoopback(opts.security.host)) {
    express.use((req: Req, res: Res, next: () => void) => {
      const foreign = foreignHost(req.headers.host, req.socket.localPort);
      if (foreign === undefined) return next();
      refuse(res, 403, 'Host', foreign);
    });
  }
  const admits = opts.admits;
  if (admits) {
    express.use((req: Req, res: Res, next: () => void) => {
      const auth = req.headers.authorization;
      if (!announcesBody(req.headers) || admits(typeof auth === 'string' ? auth : undefined)) return next();
      res.setHeader('WWW-Authenticate', 'Bearer realm="fleet"');
      answerAfterBody(req, () => refuse(res, 401, 'Authorization', UNREAD_BODY_REASON));
    });
  }
  const small = json({ limit: Math.min(SMALL_BODY_BYTES, opts.bodyLimitBytes) });
  const large = json({ limit: opts.bodyLimitBytes });
  const largeRoutes = new Set(opts.largeBodies ?? []);
  express.use((req: Req & { method: string; path: string }, res: Res, next: (err?: unknown) => void) => {
    if (opts.unparsed?.(req.path)) return next();
    const parse = largeRoutes.has(`${req.method} ${req.path}`) ? large : small;
    parse(req as never, res as never, next);
  });
  express.use((req: Req, res: Res, next: () => void) => {
    const bad = unsafeJson(req.body);
    if (bad) return refuse(res, 400, bad.field, bad.reason);
    next();
  });
  app.useGlobalFilters(new HttpExceptionFilter(app.getHttpAdapter()));
}

/** What every HTTP app's settings carry for start-up. */
export interface HttpAppSettings {
  port: number;
  prefix: string;
  redisUrl: string;
  configDir: string;
  shutdownGraceMs: number;
  security: SecuritySettings;
  warnings: string[];
}

/** Listens on the configured host and port, and logs the address actually bound (and how it is guarded). */
export async function serveHttpApp(name: string, app: INestApplication, settings: HttpAppSettings): Promise<void> {
  await app.listen(settings.port, settings.security.host);
  const address = (app.getHttpServer() as { address(): AddressInfo }).address();
  const where = address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
  const guard = settings.security.clients ? `${settings.security.clients.length} client token(s)` : 'no tokens: open to anyone who can reach it';
  new Logger(name).log(
    `listening on http://${where} (${guard}; prefix ${settings.prefix}, Redis ${redactUrl(settings.redisUrl)}, config ${settings.configDir})`,
  );
}

/** Builds a small HTTP app (64 KiB bodies, `http` for token checks before bodies), prints its config warnings, lets `configure` add to it, listens. */
export async function listenHttpApp(
  name: string,
  module: DynamicModule,
  settings: HttpAppSettings,
  configure: (app: INestApplication) => void = () => undefined,
  http: Pick<HttpAppOptions, 'admits' | 'unparsed'> = {},
): Promise<INestApplication> {
  const logger = new Logger(name);
  for (const w of settings.warnings) logger.warn(w);
  const app = await NestFactory.create(module, { bodyParser: false, logger: loggerService() });
  configureHttpApp(app, { bodyLimitBytes: SMALL_BODY_BYTES, security: settings.security, ...http });
  configure(app);
  await serveHttpApp(name, app, settings);
  return app;
}
