import 'reflect-metadata';
import { listenHttpApp, runMain } from '@fleet/app';
import { bodyAdmission } from '@fleet/auth';
import { loadAnalyzerSettings } from './analyzer-settings.js';
import { configureOps } from '@fleet/ops';
import { AnalyzerMetrics } from './analyzer-ops.js';
import { TrendAnalyzerModule } from './trend-analyzer.module.js';

await runMain('trend-analyzer', async () => {
  const settings = loadAnalyzerSettings(process.env);
  const app = await listenHttpApp(
    `trend-analyzer ${settings.analyzerId}`,
    TrendAnalyzerModule.forRoot(settings),
    settings,
    (a) => {
      configureOps(a, 'Fleet trend analyzer', 'Timing statistics, trends, anomalies and regression alerts (each with where its change began).');
      a.get(AnalyzerMetrics);
    },
    { admits: bodyAdmission(settings.security.clients) },
  );
  return { close: () => app.close(), shutdownGraceMs: settings.shutdownGraceMs };
});
