import request from 'supertest';
import { freePort } from '../../../scripts/lib/redis-server.mjs';
import { type AppProcess, startApp } from './worker-process.js';
import { StopWaiting, waitFor } from './wait-for.js';

/** An HTTP app (coordinator, resource manager, trend analyzer, dashboard) as a real process, once it is ready. */
export interface Service extends AppProcess {
  url: string;
  http: ReturnType<typeof request>;
}

const PORT_VARIABLE: Record<string, string> = {
  coordinator: 'COORDINATOR_PORT',
  'resource-manager': 'RESOURCE_MANAGER_PORT',
  'trend-analyzer': 'TREND_ANALYZER_PORT',
  dashboard: 'DASHBOARD_PORT',
};

/** Starts an app on a free port, or on the one `env` names (to start it again where clients already point). */
export async function startService(app: string, env: Record<string, string>): Promise<Service> {
  const port = env[PORT_VARIABLE[app] ?? ''] ? Number(env[PORT_VARIABLE[app] ?? '']) : await freePort();
  const proc = startApp(app, [], { ...env, [PORT_VARIABLE[app]]: String(port) });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(
      async () => {
        if (proc.child.exitCode !== null) throw new StopWaiting(`${app} failed to start:\n${proc.output()}`);
        return (await fetch(`${url}/health/ready`, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined))?.ok;
      },
      { what: `${app} to be ready (/health/ready)`, timeoutMs: 30_000, intervalMs: 100 },
    );
  } catch (err) {
    // Never ready: the process is stopped here, since no caller holds it to stop (left running, it kept jest
    // from exiting). Its output goes with the error.
    await proc.stop('SIGKILL');
    throw new Error(`${(err as Error).message}\n--- ${app}'s output ---\n${proc.output().slice(-4000)}`, { cause: err });
  }
  return { ...proc, url, http: request(url) };
}
