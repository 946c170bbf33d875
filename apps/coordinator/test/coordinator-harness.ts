import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import request from 'supertest';
import { loadCoordinatorSettings } from '../src/coordinator-settings.js';
import type { TaskView } from '../src/task-view.js';
import { createCoordinatorApp } from '../src/coordinator-app.js';
import { beforeAll } from '@jest/globals';
import { type IsolatedSuite, TEST_REDIS_URL, waitFor } from '@fleet/testing';

/** The real coordinator module in-process, driven over HTTP with supertest, on its own prefix and config. */
export interface Coordinator {
  app: NestFastifyApplication;
  http: ReturnType<typeof request>;
  close(): Promise<void>;
}

export async function startCoordinator(opts: { prefix: string; configDir: string; env?: Record<string, string> }): Promise<Coordinator> {
  const settings = loadCoordinatorSettings({ REDIS_URL: TEST_REDIS_URL, FLEET_PREFIX: opts.prefix, CONFIG_DIR: opts.configDir, ...opts.env });
  const app = await createCoordinatorApp(settings, { logger: false });
  await app.init();
  // Fastify answers once its plugins have loaded (supertest then listens on its server).
  await app.getHttpAdapter().getInstance().ready();
  return { app, http: request(app.getHttpServer()), close: () => app.close() };
}

/** A coordinator for an isolated suite, started in beforeAll and closed at the end. */
export function suiteCoordinator(suite: IsolatedSuite, env?: Record<string, string>): () => Coordinator {
  let c: Coordinator | undefined;
  beforeAll(async () => {
    c = await startCoordinator({ prefix: suite.prefix, configDir: suite.config.path, ...(env && { env }) });
    const started = c;
    suite.onCleanup(() => started.close());
  });
  return () => {
    if (!c) throw new Error('the coordinator starts in beforeAll');
    return c;
  };
}

const FINAL = new Set(['completed', 'failed', 'cancelled']);

/** Polls `GET /tasks/:id` for every id until all have finished; returns their views. */
export async function waitForFinished(c: Coordinator, ids: readonly string[], timeoutMs = 60_000): Promise<TaskView[]> {
  let views: TaskView[] = [];
  await waitFor(
    async () => {
      views = await Promise.all(ids.map(async (id) => (await c.http.get(`/tasks/${id}`).expect(200)).body as TaskView));
      return views.every((v) => FINAL.has(v.state));
    },
    { what: `${ids.length} task(s) to finish`, timeoutMs, intervalMs: 200 },
  );
  return views;
}

export async function waitForState(c: Coordinator, id: string, state: string, timeoutMs = 30_000): Promise<TaskView> {
  return waitFor(
    async () => {
      const v = (await c.http.get(`/tasks/${id}`).expect(200)).body as TaskView;
      return v.state === state ? v : undefined;
    },
    { what: `task ${id} to be ${state}`, timeoutMs, intervalMs: 100 },
  );
}
