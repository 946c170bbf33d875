import 'reflect-metadata';
import { type INestApplicationContext, Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { addLogBindings, loggerService, runMain } from '@fleet/app';
import { loadWorkerSettings } from './worker-settings.js';
import { WorkerModule } from './worker.module.js';
import { standBy } from './standby.js';

await runMain('worker', async () => {
  const settings = loadWorkerSettings(process.argv.slice(2), process.env);
  // Every line this worker logs says which worker of which pool wrote it.
  addLogBindings({ pool: settings.pool, worker_id: settings.workerId });
  for (const w of settings.warnings) new Logger('config').warn(w);
  if (settings.standby) await standBy();
  let app: INestApplicationContext;
  if (settings.httpPort !== undefined && settings.security) {
    // Run on its own (one per pod, say): health, readiness and metrics over HTTP, loaded only then.
    const { serveWorkerHttp } = await import('./worker-http.js');
    app = await serveWorkerHttp({ ...settings, httpPort: settings.httpPort, security: settings.security });
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
