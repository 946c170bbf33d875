import { isUnicodeText } from './unicode-text.js';
import { z } from 'zod';
import { type FieldError, prefixField, toFieldErrors } from './field-error.js';
import { SourceSchema } from './source.js';

/** The kinds of work a worker knows how to run; each has its own `config`. */
export const TASK_TYPES = ['test', 'benchmark', 'synthetic'] as const;
export type TaskType = (typeof TASK_TYPES)[number];

export const PRIORITY_MIN = 0;
export const PRIORITY_MAX = 1000;
export const TIMEOUT_MS_MIN = 100;
export const TIMEOUT_MS_MAX = 24 * 60 * 60 * 1000;
export const DEFAULT_TIMEOUT_MS = 10 * 60 * 1000;
export const MAX_ATTEMPTS_MAX = 20;
export const DEFAULT_RETRY_BACKOFF_MS = 1000;
export const SYNTHETIC_DURATION_MAX_MS = 60 * 60 * 1000;
export const MAX_LABELS = 32;

const between = (min: number, max: number) => `must be an integer from ${min} to ${max}`;
const boundedInt = (min: number, max: number) =>
  z
    .int({ error: between(min, max) })
    .min(min, { error: between(min, max) })
    .max(max, { error: between(min, max) });

/** A path relative to the runner's working directory: no absolute paths, no `..`, no hidden segments. */
const RELATIVE_PATH = /^[A-Za-z0-9_][A-Za-z0-9_.-]*(\/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$/;
/**
 * A model name fills an argv element: segments separated by `/` (as in `prajjwal1/bert-tiny`), each starting
 * with a letter, digit or `_`, so it can never be read as an option, climb out with `..`, or be absolute.
 */
const MODEL_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:-]*(\/[A-Za-z0-9_][A-Za-z0-9_.:-]*)*$/;
const CAPABILITY = /^[A-Za-z0-9][A-Za-z0-9_.+-]*$/;
const LABEL_KEY = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
export const METRIC_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const CapabilityNameSchema = z
  .string()
  .max(64, { error: 'must be at most 64 characters' })
  .regex(CAPABILITY, { error: 'must be letters, digits, and _ . + - (starting with a letter or digit)' });

export const HardwareRequirementsSchema = z.strictObject({
  cpu: z.union([z.boolean(), boundedInt(1, 4096)], { error: 'must be true, false or a CPU count from 1 to 4096' }).optional(),
  gpu: z.union([z.boolean(), boundedInt(0, 1024)], { error: 'must be true, false or a GPU count from 0 to 1024' }).optional(),
  threads: boundedInt(1, 65536).optional(),
  memory_gb: z
    .number()
    .gt(0, { error: 'must be a positive number' })
    .max(1 << 20, { error: 'must be at most 1048576' })
    .optional(),
  disk_gb: z
    .number()
    .gt(0, { error: 'must be a positive number' })
    .max(1 << 24, { error: 'must be at most 16777216' })
    .optional(),
  capabilities: z.array(CapabilityNameSchema).max(32, { error: 'at most 32 capabilities' }).optional(),
});
export type HardwareRequirements = z.infer<typeof HardwareRequirementsSchema>;

export const TestConfigSchema = z.strictObject({
  test_file: z
    .string({ error: 'must be a string' })
    .max(500, { error: 'must be at most 500 characters' })
    .regex(RELATIVE_PATH, { error: 'must be a relative path inside the runner directory (no leading /, no .., no hidden segments)' }),
  /** Run the file at this commit of this repository (its checkout is the runner's directory), not in the pool's workdir. */
  source: SourceSchema.optional(),
});

export const BenchmarkConfigSchema = z.strictObject({
  model: z.string({ error: 'must be a string' }).max(200, { error: 'must be at most 200 characters' }).regex(MODEL_NAME, {
    error:
      'must be /-separated names, each starting with a letter, digit or _ and using only letters, digits and _ . : - (no leading -, no .., not absolute)',
  }),
  batch_sizes: z
    .array(boundedInt(1, 65536))
    .min(1, { error: 'must list at least one batch size' })
    .max(32, { error: 'at most 32 batch sizes' })
    .default([1]),
  precision: z.enum(['fp32', 'fp16', 'bf16', 'int8'], { error: 'must be one of fp32, fp16, bf16, int8' }).default('fp32'),
  iterations: boundedInt(1, 100_000).default(10),
});

export const MetricValuesSchema = z
  .record(
    z.string().max(64).regex(METRIC_NAME, { error: 'metric names are letters, digits and _' }),
    z.number({ error: 'must be a finite number' }).refine(Number.isFinite, { error: 'must be a finite number' }),
  )
  .refine((m) => Object.keys(m).length <= 32, { error: 'at most 32 metrics' });

export const SyntheticConfigSchema = z.strictObject({
  duration_ms: boundedInt(0, SYNTHETIC_DURATION_MAX_MS).default(0),
  mode: z.enum(['sleep', 'cpu'], { error: 'must be sleep or cpu' }).default('sleep'),
  fail_probability: z
    .number({ error: 'must be a number from 0 to 1' })
    .min(0, { error: 'must be a number from 0 to 1' })
    .max(1, { error: 'must be a number from 0 to 1' })
    .default(0),
  /** Fail the first N attempts on purpose: a deterministic way to exercise retries. */
  fail_first_attempts: boundedInt(0, MAX_ATTEMPTS_MAX).default(0),
  metrics: MetricValuesSchema.default({}),
});

const NOT_UNICODE = { error: 'must be Unicode text (it holds half of a surrogate pair)' };

const LabelsSchema = z
  .record(
    z.string().max(64).regex(LABEL_KEY, { error: 'label names are letters, digits and _ . - (starting with a letter or _)' }),
    z
      .string({ error: 'label values must be strings' })
      .max(256, { error: 'label values are at most 256 characters' })
      .refine(isUnicodeText, NOT_UNICODE),
  )
  .refine((l) => Object.keys(l).length <= MAX_LABELS, { error: `at most ${MAX_LABELS} labels` });

const common = {
  name: z
    .string({ error: 'must be a string' })
    .trim()
    .min(1, { error: 'must not be empty' })
    .max(200, { error: 'must be at most 200 characters' })
    .refine(isUnicodeText, NOT_UNICODE),
  priority: boundedInt(PRIORITY_MIN, PRIORITY_MAX).default(0),
  hardware_requirements: HardwareRequirementsSchema.default({}),
  timeout_ms: boundedInt(TIMEOUT_MS_MIN, TIMEOUT_MS_MAX).default(DEFAULT_TIMEOUT_MS),
  max_attempts: boundedInt(1, MAX_ATTEMPTS_MAX).default(1),
  retry_backoff_ms: boundedInt(0, 60 * 60 * 1000).default(DEFAULT_RETRY_BACKOFF_MS),
  idempotency_key: z
    .string({ error: 'must be a string' })
    .min(1, { error: 'must not be empty' })
    .max(200, { error: 'must be at most 200 characters' })
    .optional(),
  labels: LabelsSchema.default({}),
};

export const TaskSchema = z.discriminatedUnion(
  'type',
  [
    z.strictObject({ type: z.literal('test'), config: TestConfigSchema, ...common }),
    z.strictObject({ type: z.literal('benchmark'), config: BenchmarkConfigSchema, ...common }),
    z.strictObject({ type: z.literal('synthetic'), config: SyntheticConfigSchema.default(SyntheticConfigSchema.parse({})), ...common }),
  ],
  { error: `must be one of ${TASK_TYPES.join(', ')}` },
);

export type Task = z.output<typeof TaskSchema>;
export type TestTask = Extract<Task, { type: 'test' }>;
export type BenchmarkTask = Extract<Task, { type: 'benchmark' }>;
export type SyntheticTask = Extract<Task, { type: 'synthetic' }>;
export type TaskInput = z.input<typeof TaskSchema>;

export type ParseResult<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The seed's task files put `hardware_requirements` inside `config`; the contract keeps it at the top.
 * Both spellings are accepted (not both at once), and the result is always the top-level one.
 */
function liftHardwareRequirements(input: unknown): ParseResult<unknown> {
  if (!isPlainObject(input) || !isPlainObject(input.config) || !('hardware_requirements' in input.config)) {
    return { ok: true, value: input };
  }
  if ('hardware_requirements' in input) {
    return { ok: false, errors: [{ field: 'config.hardware_requirements', reason: 'given both here and at the top level; use one' }] };
  }
  const { hardware_requirements, ...config } = input.config;
  return { ok: true, value: { ...input, config, hardware_requirements } };
}

/** Validates one task as a client sent it (or as a worker received it) and fills every default. */
export function parseTask(input: unknown): ParseResult<Task> {
  if (!isPlainObject(input)) return { ok: false, errors: [{ field: 'body', reason: 'must be a JSON object describing one task' }] };
  const lifted = liftHardwareRequirements(input);
  if (!lifted.ok) return lifted;
  const parsed = TaskSchema.safeParse(lifted.value, { reportInput: true });
  if (!parsed.success) return { ok: false, errors: toFieldErrors(parsed.error) };
  const task = parsed.data;
  if (task.type === 'benchmark' && task.labels.model_name === undefined) {
    task.labels = { ...task.labels, model_name: task.config.model };
  }
  return { ok: true, value: task };
}

/** The run a task belongs to, and its key in the run (a test file's path, or an extra task's key). */
export interface RunRef {
  id: string;
  key: string;
}

/**
 * A task as it is queued: the task, the client that submitted it, and the run it is part of, if any
 * (recorded by the coordinator, never sent by clients).
 */
export type QueuedTask = Task & { submitted_by: string; run?: RunRef };

export const RUN_ID = /^r-[a-z0-9]{6,12}-[0-9a-f]{8}$/;

export const CLIENT_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

export const MAX_BATCH_TASKS = 10_000;

/** `POST /tasks`: the parser and the schema it is built on (the OpenAPI document describes the schema). */
export const TASK_CONTRACT = { parse: parseTask, schema: TaskSchema };

/** `{"tasks": [...]}`: the batch body and the seed's `test_tasks.json` share this shape. */
export function parseTaskList(input: unknown): ParseResult<Task[]> {
  if (!isPlainObject(input)) return { ok: false, errors: [{ field: 'body', reason: 'must be a JSON object with a "tasks" array' }] };
  const unknown = Object.keys(input).filter((k) => k !== 'tasks');
  const errors: FieldError[] = unknown.map((k) => ({ field: k, reason: 'unknown field' }));
  const list = input.tasks;
  if (!Array.isArray(list))
    return { ok: false, errors: [...errors, { field: 'tasks', reason: list === undefined ? 'is required' : 'must be an array' }] };
  if (list.length === 0) errors.push({ field: 'tasks', reason: 'must hold at least one task' });
  if (list.length > MAX_BATCH_TASKS) errors.push({ field: 'tasks', reason: `must hold at most ${MAX_BATCH_TASKS} tasks` });
  if (errors.length > 0) return { ok: false, errors };
  const tasks: Task[] = [];
  list.forEach((item, i) => {
    const one = parseTask(item);
    if (one.ok) tasks.push(one.value);
    else for (const e of one.errors) errors.push({ field: prefixField(`tasks[${i}]`, e.field), reason: e.reason });
  });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, value: tasks };
}

export const TASK_LIST_CONTRACT = { parse: parseTaskList, schema: z.strictObject({ tasks: z.array(TaskSchema).min(1).max(MAX_BATCH_TASKS) }) };
