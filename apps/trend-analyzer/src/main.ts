import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { configureHttpApp, runMain } from '@fleet/app';
import { loadAnalyzerSettings } from '@fleet/config';
import { TrendAnalyzerModule } from './trend-analyzer.module.js';

await runMain('trend-analyzer', async () => {
  const settings = loadAnalyzerSettings(process.env);
  const logger = new Logger('trend-analyzer');
  for (const w of settings.warnings) logger.warn(w);
  const app = await NestFactory.create(TrendAnalyzerModule.forRoot(settings), { bodyParser: false, logger: ['log', 'warn', 'error'] });
  configureHttpApp(app, { bodyLimitBytes: 64 * 1024 });
  await app.listen(settings.port, '0.0.0.0');
  logger.log(`listening on ${await app.getUrl()} as ${settings.analyzerId} (prefix ${settings.prefix}, Redis ${settings.redisUrl})`);
  return app;
});
