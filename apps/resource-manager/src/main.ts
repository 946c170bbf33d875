import 'reflect-metadata';
import { listenHttpApp, runMain } from '@fleet/app';
import { bodyAdmission } from '@fleet/auth';
import { loadResourceManagerSettings } from './rm-settings.js';
import { configureOps } from '@fleet/ops';
import { ResourceManagerMetrics } from './rm-ops.js';
import { ResourceManagerModule } from './resource-manager.module.js';

await runMain('resource-manager', async () => {
  const settings = loadResourceManagerSettings(process.env);
  const app = await listenHttpApp(
    'resource-manager',
    ResourceManagerModule.forRoot(settings),
    settings,
    (a) => {
      configureOps(
        a,
        'Fleet resource manager',
        'Pools, their workers and sizes; pin a pool’s size or give it back to the policy; scaling decisions.',
      );
      a.get(ResourceManagerMetrics);
    },
    { admits: bodyAdmission(settings.security.clients) },
  );
  // Stopping drains its workers first (each gets its pool's stop_grace_period before SIGKILL).
  const drainMs = Math.max(0, ...settings.config.pools.map((p) => p.stopGraceMs)) + 10_000;
  return { close: () => app.close(), shutdownGraceMs: Math.max(settings.shutdownGraceMs, drainMs) };
});
