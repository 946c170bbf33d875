import { Logger } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { createFastifyApp } from '@fleet/app';
import { bodyAdmission } from '@fleet/auth';
import { configureOps } from '@fleet/ops';
import type { CoordinatorSettings } from './coordinator-settings.js';
import { CoordinatorModule } from './coordinator.module.js';
import { CoordinatorMetrics } from './coordinator-ops.js';
import { mountQueueBoard } from './queue-board.js';
import { BuildsService } from './builds.service.js';
import { RunsRepository } from './runs.repository.js';
import { TaskQueueRepository } from './task-queue.repository.js';

/** Builds the coordinator (used by `main` and by the e2e tests); Redis must answer before it serves. */
export async function createCoordinatorApp(settings: CoordinatorSettings, opts: { logger?: false } = {}): Promise<NestFastifyApplication> {
  const app = await createFastifyApp(CoordinatorModule.forRoot(settings), {
    ...opts,
    bodyLimitBytes: settings.bodyLimitBytes,
    // Only a batch and a run carry large bodies; every other route reads at most 64 KiB.
    largeBodies: ['POST /tasks/batch', 'POST /runs'],
    security: settings.security,
    admits: bodyAdmission(settings.security.clients),
  });
  configureOps(
    app,
    'Fleet coordinator',
    'Submit tasks and runs, follow them, read the queues and workers. Errors are `{statusCode, error, message, errors: [{field, reason}]}`.',
  );
  app.get(CoordinatorMetrics);
  const repo = app.get(TaskQueueRepository);
  await repo.open();
  await app.get(RunsRepository).open();
  await app.get(BuildsService).open();
  await mountQueueBoard(app, repo.allQueues(), settings.security);
  for (const w of settings.warnings) new Logger('config').warn(w);
  return app;
}
