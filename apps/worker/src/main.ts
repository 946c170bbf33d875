import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { runMain } from '@fleet/app';
import { loadWorkerSettings } from '@fleet/config';
import { WorkerModule } from './worker.module.js';

await runMain('worker', async () => {
  const settings = loadWorkerSettings(process.argv.slice(2), process.env);
  for (const w of settings.warnings) new Logger('config').warn(w);
  const app = await NestFactory.createApplicationContext(WorkerModule.forRoot(settings), { logger: ['log', 'warn', 'error'] });
  await app.init();
  if (settings.exitWithParent) {
    // Started by a resource manager: when it goes away (even killed), our stdin closes; drain and exit.
    process.stdin.on('end', () => process.kill(process.pid, 'SIGTERM'));
    process.stdin.resume();
  }
  // No overall deadline: held tasks run to their end (each bounded by its timeout); recording them is bounded.
  return app;
});
