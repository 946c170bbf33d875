import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { configureHttpApp, loggerService, serveHttpApp } from '@fleet/app';
import { AuthModule, bodyAdmission } from '@fleet/auth';
import { configureOps, opsModuleParts } from '@fleet/ops';
import { WorkerMetrics, WorkerReadiness } from './worker-ops.js';
import type { WorkerSettings } from './worker-settings.js';
import { WorkerModule } from './worker.module.js';

/**
 * A worker run on its own (one per pod, say, with WORKER_PORT): health, readiness and metrics over HTTP, behind
 * the same guard as every app. Loaded only then, so a worker a resource manager starts never loads the HTTP
 * surface (express, swagger, terminus, the auth guard).
 */
export async function serveWorkerHttp(
  settings: WorkerSettings & { httpPort: number; security: NonNullable<WorkerSettings['security']> },
): Promise<INestApplication> {
  const ops = opsModuleParts(WorkerReadiness);
  const parts = {
    imports: [
      AuthModule.forRoot({ security: settings.security, redisUrl: settings.redisUrl, prefix: settings.prefix, app: 'worker' }),
      ...ops.imports,
    ],
    controllers: ops.controllers,
    providers: [...ops.providers, WorkerMetrics],
  };
  const http = await NestFactory.create(WorkerModule.forRoot(settings, parts), { bodyParser: false, logger: loggerService() });
  configureHttpApp(http, { bodyLimitBytes: 64 * 1024, security: settings.security, admits: bodyAdmission(settings.security.clients) });
  configureOps(http, `Fleet worker ${settings.workerId}`, `A worker of pool ${settings.pool}: health, readiness and metrics.`);
  http.get(WorkerMetrics);
  await serveHttpApp(`worker ${settings.workerId}`, http, { ...settings, port: settings.httpPort, security: settings.security });
  return http;
}
