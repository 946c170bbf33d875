import {
  type CommonSettings,
  type Env,
  envInt,
  loadCommonSettings,
  loadFleetCliSettings,
  loadSecuritySettings,
  parseEnv,
  type SecuritySettings,
} from '@fleet/config';

export interface DashboardSettings extends CommonSettings {
  port: number;
  security: SecuritySettings;
  /** Where the page's requests are forwarded: each app's API, as the `fleet` command finds them. */
  upstreams: { coordinator: string; 'resource-manager': string; 'trend-analyzer': string };
  warnings: string[];
}

/**
 * The dashboard: `DASHBOARD_PORT` (8083) on `DASHBOARD_HOST` or `HOST` (127.0.0.1), forwarding to
 * COORDINATOR_URL, RESOURCE_MANAGER_URL and TREND_ANALYZER_URL (or their ports on 127.0.0.1). It holds no token
 * of its own: the browser's token goes through to the apps, which authorize every call.
 */
export function loadDashboardSettings(env: Env): DashboardSettings {
  const common = loadCommonSettings(env);
  const e = parseEnv({ DASHBOARD_PORT: envInt(0, 65535, 8083) }, env);
  const apps = loadFleetCliSettings(env);
  return {
    ...common,
    port: e.DASHBOARD_PORT,
    security: loadSecuritySettings(env, common.configDir, 'DASHBOARD'),
    upstreams: { coordinator: apps.coordinatorUrl, 'resource-manager': apps.resourceManagerUrl, 'trend-analyzer': apps.trendAnalyzerUrl },
    warnings: [],
  };
}
