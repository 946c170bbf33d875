import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { configureHttpApp, runMain } from '@fleet/app';
import { loadResourceManagerSettings } from '@fleet/config';
import { ResourceManagerModule } from './resource-manager.module.js';

await runMain('resource-manager', async () => {
  const settings = loadResourceManagerSettings(process.env);
  const logger = new Logger('resource-manager');
  for (const w of settings.warnings) logger.warn(w);
  const app = await NestFactory.create(ResourceManagerModule.forRoot(settings), { bodyParser: false, logger: ['log', 'warn', 'error'] });
  configureHttpApp(app, { bodyLimitBytes: 64 * 1024 });
  await app.listen(settings.port, '0.0.0.0');
  logger.log(`listening on ${await app.getUrl()} (prefix ${settings.prefix}, Redis ${settings.redisUrl}, config ${settings.configDir})`);
  return app;
});
