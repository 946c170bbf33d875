import { type INestApplication, Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { configureHttpApp } from '@fleet/app';
import type { CoordinatorSettings } from '@fleet/config';
import { CoordinatorModule } from './coordinator.module.js';
import { TaskQueueRepository } from './task-queue.repository.js';

/** Builds the coordinator (used by `main` and by the e2e tests); Redis must answer before it serves. */
export async function createCoordinatorApp(settings: CoordinatorSettings, opts: { logger?: false } = {}): Promise<INestApplication> {
  const app = await NestFactory.create(CoordinatorModule.forRoot(settings), { bodyParser: false, ...(opts.logger === false && { logger: false }) });
  configureHttpApp(app, { bodyLimitBytes: settings.bodyLimitBytes, security: settings.security });
  await app.get(TaskQueueRepository).open();
  for (const w of settings.warnings) new Logger('config').warn(w);
  return app;
}
