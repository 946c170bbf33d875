import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { DEFAULT_TEST_RUNNERS, type FieldError, POOL_NAME, toFieldErrors, type WorkerTemplate, WorkerTemplateSchema } from '@fleet/contracts';
import { ConfigError } from './config-error.js';
import { readJsonFile } from './json-file.js';

export const WORKER_TEMPLATES_FILE = 'worker_templates.json';

export interface Loaded<T> {
  value: T;
  /** Accepted but without effect here (the seed's keys that mean nothing to this fleet); print them at start-up. */
  warnings: string[];
}

/**
 * Loads `worker_templates.json` (template id → template, the seed's shape plus `concurrency`, `runners`,
 * `workdir`, `pool`). Every problem in every template is reported at once, each naming the template and field.
 */
export function loadWorkerTemplates(configDir: string): Loaded<WorkerTemplate[]> {
  const path = join(configDir, WORKER_TEMPLATES_FILE);
  return parseWorkerTemplates(readJsonFile(path), dirname(path));
}

export function parseWorkerTemplates(raw: unknown, baseDir: string): Loaded<WorkerTemplate[]> {
  const problems: FieldError[] = [];
  const warnings: string[] = [];
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(WORKER_TEMPLATES_FILE, [{ field: '(file)', reason: 'must be a JSON object of template id → template' }]);
  }
  const entries = Object.entries(raw as Record<string, unknown>);
  if (entries.length === 0) throw new ConfigError(WORKER_TEMPLATES_FILE, [{ field: '(file)', reason: 'must define at least one template' }]);

  const templates: WorkerTemplate[] = [];
  const pools = new Map<string, string>();
  for (const [id, value] of entries) {
    const where = (field: string) => `template ${id}: ${field}`;
    const parsed = WorkerTemplateSchema.safeParse(value, { reportInput: true });
    if (!parsed.success) {
      for (const e of toFieldErrors(parsed.error, '(template)')) problems.push({ field: where(e.field), reason: e.reason });
      continue;
    }
    const t = parsed.data;
    const pool = t.pool ?? id;
    if (!POOL_NAME.test(pool)) {
      problems.push({
        field: where('pool'),
        reason: `"${pool}" is not a valid pool name (1-63 lowercase letters, digits, _ or -); set "pool" to one`,
      });
      continue;
    }
    const other = pools.get(pool);
    if (other !== undefined) {
      problems.push({ field: where('pool'), reason: `pool "${pool}" is already served by template ${other}` });
      continue;
    }
    pools.set(pool, id);
    const workdir = resolve(baseDir, t.workdir ?? '.');
    if (!existsSync(workdir) || !statSync(workdir).isDirectory()) {
      problems.push({ field: where('workdir'), reason: `${workdir} is not a directory` });
      continue;
    }
    const ignored = (['instance_type', 'startup_script'] as const).filter((k) => t[k] !== undefined);
    if (ignored.length > 0) {
      warnings.push(
        `${WORKER_TEMPLATES_FILE}: template ${id}: ${ignored.join(', ')} ignored (the resource manager starts this project's worker app)`,
      );
    }
    templates.push({
      id,
      pool,
      provider: t.provider,
      resources: {
        cpu: t.resources.cpu,
        gpu: t.resources.gpu ?? 0,
        threads: t.resources.threads ?? t.resources.cpu,
        ...(t.resources.memory_gb !== undefined && { memory_gb: t.resources.memory_gb }),
        ...(t.resources.disk_gb !== undefined && { disk_gb: t.resources.disk_gb }),
      },
      capabilities: t.capabilities,
      concurrency: t.concurrency ?? t.resources.cpu,
      workdir,
      runners: {
        test: { ...DEFAULT_TEST_RUNNERS, ...t.runners.test },
        ...(t.runners.benchmark && { benchmark: t.runners.benchmark }),
        ...(t.runners.exit_codes && { exit_codes: t.runners.exit_codes }),
        ...(t.runners.warm && { warm: t.runners.warm }),
      },
      sources: t.sources,
      ...(t.setup && { setup: t.setup }),
      setup_timeout_ms: t.setup_timeout_ms,
    });
  }
  if (problems.length > 0) throw new ConfigError(WORKER_TEMPLATES_FILE, problems);
  return { value: templates, warnings };
}
