import { type DynamicModule, type INestApplication, Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { HttpExceptionFilter } from './http-exception.filter.js';

/** JSON bodies up to `bodyLimitBytes`, one error shape for everything, no `X-Powered-By`. */
export function configureHttpApp(app: INestApplication, opts: { bodyLimitBytes: number }): void {
  const express = app as NestExpressApplication;
  express.useBodyParser('json', { limit: opts.bodyLimitBytes });
  express.disable('x-powered-by');
  app.useGlobalFilters(new HttpExceptionFilter());
}

/** What every HTTP app's settings carry for start-up. */
export interface HttpAppSettings {
  port: number;
  prefix: string;
  redisUrl: string;
  configDir: string;
  shutdownGraceMs: number;
  warnings: string[];
}

/** Builds a small HTTP app (64 KiB bodies), prints its config warnings, listens on `settings.port`. */
export async function listenHttpApp(name: string, module: DynamicModule, settings: HttpAppSettings): Promise<INestApplication> {
  const logger = new Logger(name);
  for (const w of settings.warnings) logger.warn(w);
  const app = await NestFactory.create(module, { bodyParser: false, logger: ['log', 'warn', 'error'] });
  configureHttpApp(app, { bodyLimitBytes: 64 * 1024 });
  await app.listen(settings.port, '0.0.0.0');
  logger.log(`listening on ${await app.getUrl()} (prefix ${settings.prefix}, Redis ${settings.redisUrl}, config ${settings.configDir})`);
  return app;
}
