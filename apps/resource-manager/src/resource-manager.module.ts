import { type DynamicModule, Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { AuthModule } from '@fleet/auth';
import { opsModuleParts } from '@fleet/ops';
import { ResourceManagerMetrics, ResourceManagerReadiness } from './rm-ops.js';
import { type ResourceManagerSettings, RM_SETTINGS } from './rm-settings.js';
import { FleetStateRepository } from './fleet-state.repository.js';
import { PoolsController } from './pools.controller.js';
import { PoolsService } from './pools.service.js';
import { ResourceManagerLifecycle } from './rm-lifecycle.js';
import { ScalingService } from './scaling.service.js';
import { QueueWatch } from './queue-watch.js';
import { WorkerSupervisor } from './worker-supervisor.js';

@Module({})
export class ResourceManagerModule {
  static forRoot(settings: ResourceManagerSettings): DynamicModule {
    const ops = opsModuleParts(ResourceManagerReadiness);
    return {
      module: ResourceManagerModule,
      imports: [
        ScheduleModule.forRoot(),
        AuthModule.forRoot({ security: settings.security, redisUrl: settings.redisUrl, prefix: settings.prefix, app: 'resource-manager' }),
        ...ops.imports,
      ],
      controllers: [PoolsController, ...ops.controllers],
      providers: [
        ...ops.providers,
        ResourceManagerMetrics,
        { provide: RM_SETTINGS, useValue: settings },
        FleetStateRepository,
        WorkerSupervisor,
        ScalingService,
        QueueWatch,
        PoolsService,
        ResourceManagerLifecycle,
      ],
    };
  }
}
