import type { INestApplication, Type } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HealthController, READINESS, type Readiness } from './health.js';
import { AppMetrics, MetricsController } from './metrics.js';
import { setupOpenApi } from './openapi.js';

/**
 * What every HTTP app of the fleet adds to its module for operators: `GET /health/live`, `GET /health/ready`
 * (checked by `readiness`), `GET /metrics` (its AppMetrics registry).
 */
export function opsModuleParts(readiness: Type<Readiness>) {
  return {
    imports: [TerminusModule],
    controllers: [HealthController, MetricsController],
    providers: [AppMetrics, { provide: READINESS, useClass: readiness }],
  };
}

interface Req {
  method: string;
  baseUrl?: string;
  route?: { path?: unknown };
}
interface Res {
  statusCode: number;
  on(event: 'finish', listener: () => void): void;
}

/**
 * After configureHttpApp: request durations by route pattern (never the raw URL: ids would explode the
 * label's cardinality) into the app's metrics, and the OpenAPI document at `/openapi.json` and `/docs`.
 */
export function configureOps(app: INestApplication, title: string, description: string): void {
  const metrics = app.get(AppMetrics);
  if (app.getHttpAdapter().getType() === 'fastify') {
    // Fastify times the request itself, from its arrival; `routeOptions.url` is the pattern (none: unmatched).
    const fastify = (app as NestFastifyApplication).getHttpAdapter().getInstance();
    fastify.addHook('onResponse', (req: FastifyRequest, reply: FastifyReply, done: () => void) => {
      const labels = { method: req.method, route: req.routeOptions.url ?? 'unmatched', status_code: String(reply.statusCode) };
      metrics.httpDuration.observe(labels, reply.elapsedTime / 1000);
      done();
    });
    setupOpenApi(app, title, description);
    return;
  }
  app.use((req: Req, res: Res, next: () => void) => {
    const end = metrics.httpDuration.startTimer();
    res.on('finish', () => {
      const route = typeof req.route?.path === 'string' ? `${req.baseUrl ?? ''}${req.route.path}` : 'unmatched';
      end({ method: req.method, route, status_code: String(res.statusCode) });
    });
    next();
  });
  setupOpenApi(app, title, description);
}
