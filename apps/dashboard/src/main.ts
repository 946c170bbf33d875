import 'reflect-metadata';
import { join } from 'node:path';
import { type INestApplication, Logger } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { createProxyMiddleware } from 'http-proxy-middleware';
import { listenHttpApp, runMain } from '@fleet/app';
import { repoRoot } from '@fleet/config';
import { type DashboardSettings, loadDashboardSettings } from './dashboard-settings.js';
import { configureOps } from '@fleet/ops';
import { DashboardModule } from './dashboard.module.js';
import { OpenUpstreams } from './open-upstreams.js';

/**
 * The page's origin: `/` serves the static page (apps/dashboard/public, no build step), `/vendor/uplot/` the
 * chart library from node_modules, and `/api/<app>/…` forwards to that app's own HTTP API unchanged (method,
 * body, the browser's Authorization header), so the page reads exactly what `fleet` and curl read and needs no
 * CORS. `/board/` forwards to the coordinator's queue board (bull-board).
 */
function serve(app: INestApplication, settings: DashboardSettings): void {
  const express = app as NestExpressApplication;
  const logger = new Logger('dashboard');
  const upstreams = new OpenUpstreams(settings.security);
  for (const [name, target] of Object.entries(settings.upstreams)) {
    express.use(
      `/api/${name}`,
      upstreams.guard(name, target),
      createProxyMiddleware({
        target,
        changeOrigin: true,
        proxyTimeout: 30_000,
        on: {
          error: (err, _req, res) => {
            logger.warn(`${name} (${target}) is not reachable: ${err.message}`);
            const r = res as { headersSent?: boolean; writeHead?: (s: number, h: Record<string, string>) => void; end: (b: string) => void };
            if (!r.headersSent && r.writeHead) r.writeHead(502, { 'content-type': 'application/json; charset=utf-8' });
            r.end(
              JSON.stringify({
                statusCode: 502,
                error: 'Bad Gateway',
                message: `${name} is not reachable`,
                errors: [{ field: name, reason: err.message }],
              }),
            );
          },
        },
      }),
    );
  }
  express.use(
    '/board',
    upstreams.guard('coordinator', settings.upstreams.coordinator),
    createProxyMiddleware({ target: `${settings.upstreams.coordinator}/board`, changeOrigin: true }),
  );
  express.useStaticAssets(join(repoRoot(), 'node_modules', 'uplot', 'dist'), { prefix: '/vendor/uplot/' });
  express.useStaticAssets(join(repoRoot(), 'apps', 'dashboard', 'public'), { index: 'index.html' });
}

await runMain('dashboard', async () => {
  const settings = loadDashboardSettings(process.env);
  const app = await listenHttpApp(
    'dashboard',
    DashboardModule.forRoot(settings),
    settings,
    (a) => {
      configureOps(a, 'Fleet dashboard', 'The live page for operators, and its health, readiness and metrics.');
      serve(a, settings);
    },
    // What it forwards goes on as it came, body unread: the app behind it reads, checks and answers it.
    { unparsed: (path) => path.startsWith('/api/') || path === '/board' || path.startsWith('/board/') },
  );
  return { close: () => app.close(), shutdownGraceMs: settings.shutdownGraceMs };
});
