import type { INestApplication, Type } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
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
