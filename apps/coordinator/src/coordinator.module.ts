import { type DynamicModule, Module } from '@nestjs/common';
import { AuthModule } from '@fleet/auth';
import { opsModuleParts } from '@fleet/ops';
import { CoordinatorMetrics, CoordinatorReadiness } from './coordinator-ops.js';
import { type CoordinatorSettings, COORDINATOR_SETTINGS } from './coordinator-settings.js';
import { BuildsController } from './builds.controller.js';
import { BuildsService } from './builds.service.js';
import { CiLeases } from './ci-leases.js';
import { RunSignals } from './run-signals.js';
import { RunNews } from './run-news.js';
import { FleetController } from './fleet.controller.js';
import { TaskQueueRepository } from './task-queue.repository.js';
import { RunsController } from './runs.controller.js';
import { SourceResolver } from './source-resolver.js';
import { RunsReconciler } from './runs.reconciler.js';
import { RunsRepository } from './runs.repository.js';
import { QuarantineService } from './quarantine.service.js';
import { RunPlanner } from './run-planner.js';
import { RunViews } from './run-views.js';
import { RunsService } from './runs.service.js';
import { TasksController } from './tasks.controller.js';
import { TasksService } from './tasks.service.js';

@Module({})
export class CoordinatorModule {
  /** Settings are loaded and validated before Nest starts, so a bad config never gets this far. */
  static forRoot(settings: CoordinatorSettings): DynamicModule {
    const ops = opsModuleParts(CoordinatorReadiness);
    return {
      module: CoordinatorModule,
      imports: [
        AuthModule.forRoot({ security: settings.security, redisUrl: settings.redisUrl, prefix: settings.prefix, app: 'coordinator' }),
        ...ops.imports,
      ],
      controllers: [TasksController, RunsController, BuildsController, FleetController, ...ops.controllers],
      providers: [
        ...ops.providers,
        CoordinatorMetrics,
        { provide: COORDINATOR_SETTINGS, useValue: settings },
        TaskQueueRepository,
        TasksService,
        RunsRepository,
        RunsService,
        RunPlanner,
        RunViews,
        QuarantineService,
        RunsReconciler,
        SourceResolver,
        BuildsService,
        CiLeases,
        RunSignals,
        RunNews,
      ],
    };
  }
}
