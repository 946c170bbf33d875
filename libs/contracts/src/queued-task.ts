import { Ajv, type ValidateFunction } from 'ajv';
import { z } from 'zod';
import {
  CLIENT_NAME,
  MAX_LABELS,
  parseTask,
  type ParseResult,
  type QueuedTask,
  RUN_ID,
  type RunRef,
  type Task,
  TASK_TYPES,
  type TaskType,
  TaskSchema,
} from './task.js';

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const same = (a: unknown, b: unknown) => a === b || JSON.stringify(a) === JSON.stringify(b);

/** Fields a task's type requires in `config` (no default); a stand-in value lets the schema fill the rest. */
const REQUIRED_CONFIG: Record<TaskType, Record<string, string>> = { test: { test_file: 'x' }, benchmark: { model: 'x' }, synthetic: {} };

/** Per task type, every default the schema fills, computed once from the schema itself (one source of truth). */
interface Defaults {
  top: Record<string, unknown>;
  config: Record<string, unknown>;
}
const DEFAULTS = Object.fromEntries(
  TASK_TYPES.map((type): [TaskType, Defaults] => {
    const parsed = parseTask({ type, name: 'x', config: REQUIRED_CONFIG[type] });
    if (!parsed.ok) throw new Error(`the task schema has no defaults for ${type}`);
    const { type: _type, name: _name, labels: _labels, config, ...top } = parsed.value;
    const configDefaults = Object.fromEntries(Object.entries(config).filter(([k]) => !(k in REQUIRED_CONFIG[type])));
    return [type, { top: { ...top, labels: {} }, config: configDefaults }];
  }),
) as Record<TaskType, Defaults>;

/**
 * The job payload the coordinator stores: the task without the fields that equal their defaults (a no-op
 * synthetic task shrinks from about 250 bytes to 66), with its client and run. `parseQueuedTask` fills them
 * back, so readers of a job see the whole task.
 */
export function compactQueuedTask(task: Task, submittedBy: string, run?: RunRef): Record<string, unknown> {
  const defaults = DEFAULTS[task.type];
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(task)) {
    if (k === 'config') {
      const config: Record<string, unknown> = {};
      for (const [ck, cv] of Object.entries(v as Record<string, unknown>))
        if (!(ck in defaults.config) || !same(cv, defaults.config[ck])) config[ck] = cv;
      out.config = config;
    } else if (!(k in defaults.top) || !same(v, defaults.top[k])) out[k] = v;
  }
  out.submitted_by = submittedBy;
  if (run) out.run = run;
  return out;
}

/**
 * One compiled check per task type of the fully-defaulted task, from the zod schema's JSON Schema (ajv):
 * the same rules, at a fraction of the cost per payload. What JSON Schema cannot say (a trimmed name, the
 * label count, a benchmark's model label) is checked beside it; anything the fast check does not accept goes
 * to the zod parser, which decides and names the field.
 */
let compiled: Record<TaskType, ValidateFunction> | undefined;
/**
 * Compiled once, on first use or by `prepareQueuedTaskParser` (about 100 ms): a worker does it before it
 * takes work, so its first task does not wait for it.
 */
const fastCheck = (): Record<TaskType, ValidateFunction> => {
  if (compiled) return compiled;
  const ajv = new Ajv({ allErrors: false, strict: false });
  const branches = (
    z.toJSONSchema(TaskSchema, { io: 'output', unrepresentable: 'any' }) as unknown as { oneOf: Array<{ properties: { type: { const: TaskType } } }> }
  ).oneOf;
  compiled = Object.fromEntries(branches.map((b) => [b.properties.type.const, ajv.compile(b)])) as Record<TaskType, ValidateFunction>;
  return compiled;
};

/** Compiles the fast payload check now (a worker calls this at start-up). */
export function prepareQueuedTaskParser(): void {
  fastCheck();
}

function fastParse(data: Record<string, unknown>): Task | undefined {
  const type = data.type as TaskType;
  const check = typeof type === 'string' ? fastCheck()[type] : undefined;
  if (!check || !isPlainObject(data.config)) return undefined;
  const defaults = DEFAULTS[type];
  const task = { ...defaults.top, ...data, config: { ...defaults.config, ...data.config } } as Task;
  if (!check(task)) return undefined;
  if (task.name.trim() !== task.name || Object.keys(task.labels).length > MAX_LABELS) return undefined;
  if (task.type === 'benchmark' && task.labels.model_name === undefined) return undefined;
  if (task.type === 'synthetic' && Object.keys(task.config.metrics).length > 32) return undefined;
  return task;
}

/**
 * Validates a queued job's payload (what a worker receives): the task, plus who submitted it. A payload
 * from before clients were recorded (or written by hand) counts as `anonymous`. Compact payloads get their
 * defaults back.
 */
export function parseQueuedTask(data: unknown): ParseResult<QueuedTask> {
  if (!isPlainObject(data)) return parseTask(data) as ParseResult<QueuedTask>;
  const { submitted_by = 'anonymous', run, ...task } = data;
  if (typeof submitted_by !== 'string' || !CLIENT_NAME.test(submitted_by)) {
    return { ok: false, errors: [{ field: 'submitted_by', reason: 'must be a client name' }] };
  }
  if (
    run !== undefined &&
    !(isPlainObject(run) && typeof run.id === 'string' && RUN_ID.test(run.id) && typeof run.key === 'string' && run.key.length <= 500)
  ) {
    return { ok: false, errors: [{ field: 'run', reason: 'must be {id, key} of a run' }] };
  }
  const fast = fastParse(task);
  const parsed = fast ? { ok: true as const, value: fast } : parseTask(task);
  return parsed.ok
    ? { ok: true, value: { ...parsed.value, submitted_by, ...(run !== undefined && { run: { id: run.id as string, key: run.key as string } }) } }
    : parsed;
}
