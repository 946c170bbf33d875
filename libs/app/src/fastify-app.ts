import type { DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import helmet from 'helmet';
import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { isLoopback } from '@fleet/config';
import { badRequest } from './http-errors.js';
import { HttpExceptionFilter } from './http-exception.filter.js';
import {
  announcesBody,
  answerAfterBody,
  foreignHost,
  HELMET_OPTIONS,
  type HttpAppOptions,
  refusal,
  SMALL_BODY_BYTES,
  UNREAD_BODY_REASON,
  unsafeJson,
} from './http-app.js';

/** Node's own default, which Fastify turns off (0): a client that never finishes its request is cut off after it. */
const REQUEST_TIMEOUT_MS = 300_000;

/**
 * An HTTP app on Fastify, with the same hardening as configureHttpApp gives an Express one: security headers
 * (helmet), no CORS unless origins are configured, the `Host` check while bound to loopback, no body
 * read before its sender is authenticated, JSON bodies only, each up to its route's limit, no deeper than
 * MAX_JSON_DEPTH and without prototype keys, and one error shape for everything. On Fastify the coordinator, the
 * app on every task's path, spends half the CPU of Express on a health check and a quarter less on a task's
 * submission, and leaves far less garbage to promote (docs/benchmark.md, "The coordinator on Fastify").
 */
export async function createFastifyApp(module: DynamicModule, opts: HttpAppOptions & { logger?: false }): Promise<NestFastifyApplication> {
  const small = Math.min(SMALL_BODY_BYTES, opts.bodyLimitBytes);
  const adapter = new FastifyAdapter({
    bodyLimit: small,
    requestTimeout: REQUEST_TIMEOUT_MS,
    // Ids in paths may be long (a run's idempotency key): their validation, not the router, names the limit. A
    // trailing slash names the same route, as it did on Express.
    routerOptions: { maxParamLength: 1000, ignoreTrailingSlash: true },
    // unsafeJson below refuses prototype keys and names where they are; Fastify's own check would not say.
    onProtoPoisoning: 'ignore',
    onConstructorPoisoning: 'ignore',
    // While it closes, a request that still arrives on a kept-alive connection is served as on Express (with
    // `Connection: close`), not answered with Fastify's own 503 body, which lacks the fleet's error shape.
    return503OnClosing: false,
  });
  const app = await NestFactory.create<NestFastifyApplication>(module, adapter, {
    bodyParser: false,
    ...(opts.logger === false && { logger: false }),
  });
  const fastify = app.getHttpAdapter().getInstance();
  const large = new Set(opts.largeBodies ?? []);
  fastify.addHook('onRoute', (route: RouteOptions) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    route.bodyLimit = methods.some((m) => large.has(`${m} ${route.url}`)) ? opts.bodyLimitBytes : small;
  });
  // helmet's middleware, built once (as configureHttpApp does), on the Node response: Fastify merges those headers
  // into every answer, refusals and 404s included. (@fastify/helmet builds helmet's middleware anew for every
  // request: a third of the coordinator's CPU for a health check, and garbage that outlived young collections.)
  const securityHeaders = helmet(HELMET_OPTIONS);
  fastify.addHook('onRequest', (req: FastifyRequest, reply: FastifyReply, done: () => void) => securityHeaders(req.raw, reply.raw, done));
  if (opts.security.corsOrigins.length > 0) app.enableCors({ origin: opts.security.corsOrigins });
  const send = (reply: FastifyReply, status: number, field: string, reason: string) =>
    reply
      .code(status)
      .type('application/json; charset=utf-8')
      .send(refusal(status, field, reason));
  if (isLoopback(opts.security.host)) {
    fastify.addHook('onRequest', (req: FastifyRequest, reply: FastifyReply, done: () => void) => {
      const foreign = foreignHost(req.headers.host, req.raw.socket.localPort);
      if (foreign === undefined) return done();
      void send(reply, 403, 'Host', foreign);
    });
  }
  const admits = opts.admits;
  if (admits) {
    fastify.addHook('onRequest', (req: FastifyRequest, reply: FastifyReply, done: () => void) => {
      const auth = req.headers.authorization;
      if (!announcesBody(req.headers) || admits(typeof auth === 'string' ? auth : undefined)) return done();
      void reply.header('WWW-Authenticate', 'Bearer realm="fleet"');
      answerAfterBody(req.raw, () => void send(reply, 401, 'Authorization', UNREAD_BODY_REASON));
    });
  }
  // JSON is the only body type (Fastify's own text/plain parser goes too): anything else is a 415 that names
  // Content-Type. An empty body is `{}`, as body-parser made it.
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser(
    'application/json',
    { parseAs: 'buffer' },
    (_req: FastifyRequest, body: Buffer, done: (err: Error | null, body?: unknown) => void) => {
      if (body.length === 0) return done(null, {});
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch (err) {
        return done(badRequest([{ field: 'body', reason: `malformed JSON: ${(err as Error).message}` }]));
      }
      const bad = unsafeJson(parsed);
      done(bad ? badRequest([bad]) : null, parsed);
    },
  );
  app.useGlobalFilters(new HttpExceptionFilter(app.getHttpAdapter()));
  return app;
}
