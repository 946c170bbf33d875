import { type DynamicModule, Module } from '@nestjs/common';
import { AuthModule } from '@fleet/auth';
import type { DashboardSettings } from './dashboard-settings.js';
import { opsModuleParts } from '@fleet/ops';
import { DASHBOARD_SETTINGS, DashboardReadiness } from './dashboard-ops.js';

/**
 * The dashboard app: static files and a forwarder (see main.ts), plus the health, readiness and metrics every
 * app has, behind the same guard (its metrics need the read role). The page and the forwarder hold no data:
 * the apps behind them authorize every call with the token the browser sends.
 */
@Module({})
export class DashboardModule {
  static forRoot(settings: DashboardSettings): DynamicModule {
    const ops = opsModuleParts(DashboardReadiness);
    return {
      module: DashboardModule,
      imports: [
        AuthModule.forRoot({ security: settings.security, redisUrl: settings.redisUrl, prefix: settings.prefix, app: 'dashboard' }),
        ...ops.imports,
      ],
      controllers: ops.controllers,
      providers: [...ops.providers, { provide: DASHBOARD_SETTINGS, useValue: settings }],
    };
  }
}
