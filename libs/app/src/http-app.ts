import type { INestApplication } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { HttpExceptionFilter } from './http-exception.filter.js';

/** JSON bodies up to `bodyLimitBytes`, one error shape for everything, no `X-Powered-By`. */
export function configureHttpApp(app: INestApplication, opts: { bodyLimitBytes: number }): void {
  const express = app as NestExpressApplication;
  express.useBodyParser('json', { limit: opts.bodyLimitBytes });
  express.disable('x-powered-by');
  app.useGlobalFilters(new HttpExceptionFilter());
}
