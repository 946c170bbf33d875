import 'reflect-metadata';
import { type INestApplicationContext, Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { addLogBindings, configureHttpApp, loggerService, runMain, serveHttpApp } from '@fleet/app';
import { loadWorkerSettings } from './worker-settings.js';
import { configureOps } from '@fleet/ops';
import { WorkerMetrics } from './worker-ops.js';
import { WorkerModule } from './worker.module.js';

await runMain('worker', async () => {
  const settings = loadWorkerSettings(process.argv.slice(2), process.env);
  // Every line this worker logs says which worker of which pool wrote it.
  addLogBindings({ pool: settings.pool, worker_id: settings.workerId });
  for (const w of settings.warnings) new Logger('config').warn(w);
  let app: INestApplicationContext;
  if (settings.httpPort !== undefined && settings.security) {
    // Run on its own (one per pod, say): health, readiness and metrics over HTTP.
    const http = await NestFactory.create(WorkerModule.forRoot(settings), { bodyParser: false, logger: loggerService() });
    configureHttpApp(http, { bodyLimitBytes: 64 * 1024, security: settings.security });
    configureOps(http, `Fleet worker ${settings.workerId}`, `A worker of pool ${settings.pool}: health, readiness and metrics.`);
    http.get(WorkerMetrics);
    await serveHttpApp(`worker ${settings.workerId}`, http, { ...settings, port: settings.httpPort, security: settings.security });
    app = http;
  } else {
    app = await NestFactory.createApplicationContext(WorkerModule.forRoot(settings), { logger: loggerService() });
    await app.init();
  }
  if (settings.exitWithParent) {
    // Started by a resource manager: when it goes away (even killed), our stdin closes; drain and exit.
    process.stdin.on('end', () => process.kill(process.pid, 'SIGTERM'));
    process.stdin.resume();
  }
  // No overall deadline: held tasks run to their end (each bounded by its timeout); recording them is bounded.
  return app;
});
