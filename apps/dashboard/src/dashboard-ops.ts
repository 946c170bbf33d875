import { Inject, Injectable } from '@nestjs/common';
import type { HealthIndicatorService } from '@nestjs/terminus';
import type { DashboardSettings } from './dashboard-settings.js';
import { indicator, type Readiness } from '@fleet/ops';

export const DASHBOARD_SETTINGS = Symbol('DASHBOARD_SETTINGS');

/** Ready when every app it forwards to answers its liveness probe (the page would show nothing otherwise). */
@Injectable()
export class DashboardReadiness implements Readiness {
  constructor(@Inject(DASHBOARD_SETTINGS) private readonly settings: DashboardSettings) {}

  checks(h: HealthIndicatorService) {
    return Object.entries(this.settings.upstreams).map(
      ([app, url]) =>
        () =>
          indicator(h, app, async () => {
            const res = await fetch(`${url}/health/live`, { signal: AbortSignal.timeout(2000) });
            if (!res.ok) throw new Error(`${url}/health/live answered ${res.status}`);
            return { url };
          }),
    );
  }
}
