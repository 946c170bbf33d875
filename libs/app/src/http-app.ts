import type { AddressInfo } from 'node:net';
import { type DynamicModule, type INestApplication, Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import helmet from 'helmet';
import { isLoopback, redactUrl, type SecuritySettings } from '@fleet/config';
import { type ErrorBody } from './http-errors.js';
import { HttpExceptionFilter } from './http-exception.filter.js';
import { loggerService } from './logging.js';

/** Deepest nesting a JSON body may have: the task contract needs five levels; a hostile body gets 400. */
export const MAX_JSON_DEPTH = 16;
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

interface Req {
  body?: unknown;
  headers: Record<string, string | string[] | undefined>;
  socket: { localPort?: number };
}
interface Res {
  status(code: number): Res;
  json(body: ErrorBody): void;
}

const refuse = (res: Res, status: number, field: string, reason: string) =>
  res
    .status(status)
    .json({ statusCode: status, error: status === 400 ? 'Bad Request' : 'Forbidden', message: `${field}: ${reason}`, errors: [{ field, reason }] });

/** The first place a parsed body nests too deep or uses a key that reaches into prototypes, as a path. */
export function unsafeJson(body: unknown): { field: string; reason: string } | undefined {
  const stack: Array<{ value: unknown; path: string; depth: number }> = [{ value: body, path: 'body', depth: 0 }];
  while (stack.length > 0) {
    const { value, path, depth } = stack.pop() as { value: unknown; path: string; depth: number };
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= MAX_JSON_DEPTH) return { field: path, reason: `nested deeper than ${MAX_JSON_DEPTH} levels` };
    if (Array.isArray(value)) value.forEach((v, i) => stack.push({ value: v, path: `${path}[${i}]`, depth: depth + 1 }));
    else {
      for (const [k, v] of Object.entries(value)) {
        if (FORBIDDEN_KEYS.has(k)) return { field: `${path}.${k}`, reason: 'is not an allowed key' };
        stack.push({ value: v, path: `${path}.${k}`, depth: depth + 1 });
      }
    }
  }
  return undefined;
}

/**
 * Hardening every HTTP app of the fleet shares: security headers (helmet), no CORS unless origins are
 * configured, a `Host` check while bound to loopback (a page on another site cannot reach the API through
 * DNS rebinding), JSON bodies up to `bodyLimitBytes` no deeper than MAX_JSON_DEPTH and without prototype
 * keys, one error shape for everything, no `X-Powered-By`.
 */
export function configureHttpApp(app: INestApplication, opts: { bodyLimitBytes: number; security: SecuritySettings }): void {
  const express = app as NestExpressApplication;
  express.disable('x-powered-by');
  // helmet's defaults, but for upgrade-insecure-requests: a fleet served over plain HTTP inside a private network
  // (the dashboard, /docs) must not have its own requests rewritten to https.
  express.use(helmet({ contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } } }));
  if (opts.security.corsOrigins.length > 0) express.enableCors({ origin: opts.security.corsOrigins });
  if (isLoopback(opts.security.host)) {
    express.use((req: Req, res: Res, next: () => void) => {
      const port = req.socket.localPort;
      const host = typeof req.headers.host === 'string' ? req.headers.host.toLowerCase() : '';
      if ([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`].includes(host)) return next();
      refuse(
        res,
        403,
        'Host',
        `"${host}" is not this app's address (bound to loopback; a request for another name is refused, against DNS rebinding)`,
      );
    });
  }
  express.useBodyParser('json', { limit: opts.bodyLimitBytes });
  express.use((req: Req, res: Res, next: () => void) => {
    const bad = unsafeJson(req.body);
    if (bad) return refuse(res, 400, bad.field, bad.reason);
    next();
  });
  app.useGlobalFilters(new HttpExceptionFilter());
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

/** Builds a small HTTP app (64 KiB bodies), prints its config warnings, lets `configure` add to it, listens. */
export async function listenHttpApp(
  name: string,
  module: DynamicModule,
  settings: HttpAppSettings,
  configure: (app: INestApplication) => void = () => undefined,
): Promise<INestApplication> {
  const logger = new Logger(name);
  for (const w of settings.warnings) logger.warn(w);
  const app = await NestFactory.create(module, { bodyParser: false, logger: loggerService() });
  configureHttpApp(app, { bodyLimitBytes: 64 * 1024, security: settings.security });
  configure(app);
  await serveHttpApp(name, app, settings);
  return app;
}
