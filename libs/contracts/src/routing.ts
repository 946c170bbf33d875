import { extensionOf } from './command-template.js';
import type { HardwareRequirements, Task } from './task.js';
import type { WorkerTemplate } from './worker-template.js';

export type RouteResult = { ok: true; pool: string } | { ok: false; reason: string };

/** What a template lacks for these requirements; empty when it satisfies them all. */
export function unmetRequirements(req: HardwareRequirements, template: WorkerTemplate): string[] {
  const have = template.resources;
  const caps = new Set(template.capabilities.map((c) => c.toUpperCase()));
  const gpus = have.gpu > 0 ? have.gpu : caps.has('GPU') ? 1 : 0;
  const missing: string[] = [];
  if (req.cpu === true && have.cpu < 1) missing.push('no CPU');
  if (typeof req.cpu === 'number' && have.cpu < req.cpu) missing.push(`cpu ${have.cpu} < ${req.cpu}`);
  if (req.gpu === true && gpus < 1) missing.push('no GPU');
  if (typeof req.gpu === 'number' && gpus < req.gpu) missing.push(`gpu ${gpus} < ${req.gpu}`);
  if (req.threads !== undefined && have.threads < req.threads) missing.push(`threads ${have.threads} < ${req.threads}`);
  if (req.memory_gb !== undefined && (have.memory_gb ?? 0) < req.memory_gb) missing.push(`memory_gb ${have.memory_gb ?? 0} < ${req.memory_gb}`);
  if (req.disk_gb !== undefined && (have.disk_gb ?? 0) < req.disk_gb) missing.push(`disk_gb ${have.disk_gb ?? 0} < ${req.disk_gb}`);
  for (const cap of req.capabilities ?? []) if (!caps.has(cap.toUpperCase())) missing.push(`lacks capability ${cap}`);
  return missing;
}

/** Whether the template has a runner for this kind of task (synthetic tasks run in the worker itself). */
export function missingRunner(task: Task, template: WorkerTemplate): string | undefined {
  if (task.type === 'test') {
    const ext = extensionOf(task.config.test_file);
    return template.runners.test[ext] ? undefined : `no test runner for "${ext || '(no extension)'}" files`;
  }
  if (task.type === 'benchmark') return template.runners.benchmark ? undefined : 'no benchmark runner';
  return undefined;
}

/** Smallest first: a CPU-only task should not occupy a GPU machine when a CPU pool can take it. */
export function byCost(a: WorkerTemplate, b: WorkerTemplate): number {
  return (
    a.resources.gpu - b.resources.gpu ||
    a.resources.cpu - b.resources.cpu ||
    (a.resources.memory_gb ?? 0) - (b.resources.memory_gb ?? 0) ||
    a.pool.localeCompare(b.pool)
  );
}

/**
 * Picks the cheapest pool whose template satisfies the task's hardware requirements and can run its
 * type. A task no pool can take is refused with the reason per pool, never queued to wait forever.
 */
export function routeTask(task: Task, templates: readonly WorkerTemplate[]): RouteResult {
  const reasons: string[] = [];
  let best: WorkerTemplate | undefined;
  for (const t of templates) {
    const unmet = unmetRequirements(task.hardware_requirements, t);
    const runner = missingRunner(task, t);
    if (runner) unmet.push(runner);
    if (unmet.length > 0) reasons.push(`${t.pool}: ${unmet.join(', ')}`);
    else if (!best || byCost(t, best) < 0) best = t;
  }
  if (best) return { ok: true, pool: best.pool };
  if (templates.length === 0) return { ok: false, reason: 'no worker pools are configured' };
  return { ok: false, reason: `no worker pool can run this task (${reasons.join('; ')})` };
}
