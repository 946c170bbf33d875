import 'reflect-metadata';
import { listenHttpApp, runMain } from '@fleet/app';
import { loadAnalyzerSettings } from '@fleet/config';
import { TrendAnalyzerModule } from './trend-analyzer.module.js';

await runMain('trend-analyzer', async () => {
  const settings = loadAnalyzerSettings(process.env);
  const app = await listenHttpApp(`trend-analyzer ${settings.analyzerId}`, TrendAnalyzerModule.forRoot(settings), settings);
  return { close: () => app.close(), shutdownGraceMs: settings.shutdownGraceMs };
});
