import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { type ResourceManagerSettings, RM_SETTINGS } from './rm-settings.js';
import { FleetStateRepository } from './fleet-state.repository.js';
import { ScalingService } from './scaling.service.js';
import { QueueWatch } from './queue-watch.js';

/** Start-up and shutdown in one place, in order. */
@Injectable()
export class ResourceManagerLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('resource-manager');

  constructor(
    @Inject(RM_SETTINGS) private readonly settings: ResourceManagerSettings,
    private readonly repo: FleetStateRepository,
    private readonly scaling: ScalingService,
    private readonly watch: QueueWatch,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.repo.open();
    await this.scaling.tick();
    this.scaling.schedule();
    this.watch.start();
    this.logger.log(`${this.settings.managerId} ticking every ${this.settings.config.pollingIntervalMs} ms`);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.watch.stop();
    await this.scaling.shutdown();
    await this.repo.close();
  }
}
