import { loadFleetCliSettings } from '@fleet/config';

/** Where the apps are, and the token every request carries (`FLEET_TOKEN`). */
export interface Api {
  coordinator: string;
  resourceManager: string;
  trendAnalyzer: string;
  token: string | undefined;
}

export function api(env: NodeJS.ProcessEnv = process.env): Api {
  const s = loadFleetCliSettings(env);
  return { coordinator: s.coordinatorUrl, resourceManager: s.resourceManagerUrl, trendAnalyzer: s.trendAnalyzerUrl, token: s.token };
}

/** Thrown for an answer the command cannot go on from; `exitCode` is what the CLI exits with. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
    /** The HTTP status of a refused call; 0 when the app was not reachable. */
    readonly status?: number,
  ) {
    super(message);
  }
}

interface ErrorBody {
  message?: string;
  errors?: Array<{ field: string; reason: string }>;
}

const APP_OF: Record<string, string> = {};

/**
 * One HTTP call to a fleet app with the token, as JSON (or text for `accept: 'text'`). A refused call becomes
 * a CliError naming the fields and reasons the app gave; an unreachable app says how to start it.
 */
export async function call<T>(a: Api, base: string, method: string, path: string, body?: unknown, accept: 'json' | 'text' = 'json'): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (a.token) headers.authorization = `Bearer ${a.token}`;
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, { method, headers, ...(body !== undefined && { body: JSON.stringify(body) }) });
  } catch (err) {
    throw new CliError(`${APP_OF[base] ?? base} is not reachable (${(err as Error).message}): is the fleet running (npm start)?`, 2, 0);
  }
  if (res.ok) return (accept === 'json' ? await res.json() : await res.text()) as T;
  const json = (await res.json().catch(() => ({}))) as ErrorBody;
  const why = json.errors?.length ? json.errors.map((e) => `${e.field}: ${e.reason}`).join('; ') : (json.message ?? `HTTP ${res.status}`);
  const hint = res.status === 401 ? ' (set FLEET_TOKEN to a client token)' : '';
  throw new CliError(`${method} ${path}: ${res.status} ${why}${hint}`, 2, res.status);
}
