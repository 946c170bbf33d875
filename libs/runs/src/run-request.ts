import { z } from 'zod';
import { HardwareRequirementsSchema, PoolNameSchema, type ParseResult, SourceSchema, TaskSchema, toFieldErrors } from '@fleet/contracts';

/** A glob or a path relative to the pool's workdir: no absolute path, no `..`, no option-like or hidden segment. */
const PATTERN = /^[A-Za-z0-9_*?[{][A-Za-z0-9_.*?[\]{},!-]*(\/[A-Za-z0-9_*?[{][A-Za-z0-9_.*?[\]{},!-]*)*\/?$/;
const PATTERN_RULE = 'must be a file, a folder or a glob relative to the pool workdir or the source (no leading / or -, no .., no hidden segments)';
export const RUN_KEY = /^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,199}$/;
export const MAX_RUN_FILES = 5000;
export const MAX_RETRIES = 10;
/** Per pattern; and per run, how many entries may be globs or folders (each one walks the tree). */
export const MAX_WILDCARDS = 12;
export const MAX_GROUPS = 6;
export const MAX_RUN_GLOBS = 100;

const LabelsSchema = z
  .record(
    z
      .string()
      .max(64)
      .regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/, { error: 'label names are letters, digits and _ . - (starting with a letter or _)' }),
    z.string({ error: 'label values must be strings' }).max(256, { error: 'label values are at most 256 characters' }),
  )
  .refine((l) => Object.keys(l).length <= 24, { error: 'at most 24 labels' });

/** An extra task of the run (a setup, a report): a task, with a key other tasks name in `depends_on`. */
const RunTaskSchema = z.intersection(
  z.object({
    key: z.string().regex(RUN_KEY, { error: 'keys are 1-200 letters, digits and _ . : / - (starting with a letter, digit or _)' }),
    depends_on: z.array(z.string()).max(100, { error: 'at most 100 dependencies' }).default([]),
  }),
  z.record(z.string(), z.unknown()),
);

export const RunRequestSchema = z
  .strictObject({
    name: z.string({ error: 'must be a string' }).trim().min(1, { error: 'must not be empty' }).max(200, { error: 'must be at most 200 characters' }),
    tests: z
      .array(
        z
          .string({ error: 'must be a string' })
          .max(500, { error: 'must be at most 500 characters' })
          .regex(PATTERN, { error: PATTERN_RULE })
          // A dot that starts an alternative or sits in a class would name hidden files all the same.
          .refine((p) => !/(^|[/{,])\./.test(p) && !/\[[^\]]*\.[^\]]*\]/.test(p), { error: PATTERN_RULE })
          // Each wildcard multiplies what matching may cost: a bounded number keeps a pattern cheap to match.
          .refine((p) => (p.match(/[*?]/g) ?? []).length <= MAX_WILDCARDS && (p.match(/[{[]/g) ?? []).length <= MAX_GROUPS, {
            error: `must have at most ${MAX_WILDCARDS} wildcards (* ?) and ${MAX_GROUPS} groups ({…} […])`,
          }),
      )
      .max(MAX_RUN_FILES, { error: `at most ${MAX_RUN_FILES} entries` })
      .default([]),
    pool: PoolNameSchema.optional(),
    /** Test this commit: the tests resolve against its tree and run in its checkout (a branch or tag becomes its sha). */
    source: SourceSchema.optional(),
    hardware_requirements: HardwareRequirementsSchema.optional(),
    retries: z
      .int({ error: `must be a whole number from 0 to ${MAX_RETRIES}` })
      .min(0)
      .max(MAX_RETRIES, { error: `must be at most ${MAX_RETRIES}` })
      .default(0),
    timeout_ms: TaskSchema.options[0].shape.timeout_ms,
    priority: TaskSchema.options[0].shape.priority,
    labels: LabelsSchema.default({}),
    /** Keys of `tasks` every test file waits for (a setup). */
    tests_depend_on: z.array(z.string()).max(100).default([]),
    tasks: z.array(RunTaskSchema).max(100, { error: 'at most 100 extra tasks' }).default([]),
    idempotency_key: z.string().min(1).max(200).optional(),
  })
  .refine((r) => r.tests.length + r.tasks.length > 0, { error: 'a run needs tests or tasks', path: ['tests'] })
  .refine((r) => r.tests.filter((t) => /[*?[{]/.test(t) || t.endsWith('/')).length <= MAX_RUN_GLOBS, {
    error: `at most ${MAX_RUN_GLOBS} globs and folders per run (files may be listed one by one)`,
    path: ['tests'],
  });

export type RunRequest = z.output<typeof RunRequestSchema>;
export type RunTaskInput = z.output<typeof RunTaskSchema>;

/** Validates `POST /runs` (without resolving patterns, which needs the pool's workdir). */
export function parseRunRequest(input: unknown): ParseResult<RunRequest> {
  const r = RunRequestSchema.safeParse(input, { reportInput: true });
  if (!r.success) return { ok: false, errors: toFieldErrors(r.error) };
  const keys = new Set<string>();
  const errors = [];
  for (const [i, t] of r.data.tasks.entries()) {
    if (keys.has(t.key)) errors.push({ field: `tasks[${i}].key`, reason: `"${t.key}" is used twice` });
    keys.add(t.key);
  }
  const known = (k: string) => keys.has(k) || k === '*';
  for (const [i, t] of r.data.tasks.entries()) {
    for (const [j, d] of t.depends_on.entries()) {
      if (!known(d)) errors.push({ field: `tasks[${i}].depends_on[${j}]`, reason: `no task "${d}" in this run (use "*" for every test file)` });
      if (d === t.key) errors.push({ field: `tasks[${i}].depends_on[${j}]`, reason: 'a task cannot wait for itself' });
    }
  }
  for (const [j, d] of r.data.tests_depend_on.entries()) {
    if (!keys.has(d)) errors.push({ field: `tests_depend_on[${j}]`, reason: `no task "${d}" in this run` });
    else {
      const path = pathToTests(r.data.tasks, d);
      if (path) errors.push({ field: `tests_depend_on[${j}]`, reason: `"${d}" waits for the tests itself (${[...path, '*'].join(' → ')})` });
    }
  }
  const cycle = findCycle(r.data.tasks);
  if (cycle) errors.push({ field: 'tasks', reason: `dependencies go round in a circle: ${cycle.join(' → ')}` });
  if (r.data.pool && r.data.hardware_requirements) errors.push({ field: 'pool', reason: 'give a pool or hardware_requirements, not both' });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, value: r.data };
}

/** The chain by which task `from` waits, directly or through others, for the test files (`*`), or undefined. */
function pathToTests(tasks: readonly RunTaskInput[], from: string): string[] | undefined {
  const deps = new Map(tasks.map((t) => [t.key, t.depends_on]));
  const seen = new Set<string>();
  const walk = (k: string): string[] | undefined => {
    if (seen.has(k)) return undefined;
    seen.add(k);
    const ds = deps.get(k) ?? [];
    if (ds.includes('*')) return [k];
    for (const d of ds) {
      const rest = walk(d);
      if (rest) return [k, ...rest];
    }
    return undefined;
  };
  return walk(from);
}

/** A cycle among the extra tasks' dependencies (`*` waits for the tests, which wait for nothing here), or undefined. */
function findCycle(tasks: readonly RunTaskInput[]): string[] | undefined {
  const deps = new Map(tasks.map((t) => [t.key, t.depends_on.filter((d) => d !== '*')]));
  const state = new Map<string, 'visiting' | 'done'>();
  const path: string[] = [];
  const visit = (k: string): string[] | undefined => {
    if (state.get(k) === 'done') return undefined;
    if (state.get(k) === 'visiting') return [...path.slice(path.indexOf(k)), k];
    state.set(k, 'visiting');
    path.push(k);
    for (const d of deps.get(k) ?? []) {
      const c = visit(d);
      if (c) return c;
    }
    path.pop();
    state.set(k, 'done');
    return undefined;
  };
  for (const k of deps.keys()) {
    const c = visit(k);
    if (c) return c;
  }
  return undefined;
}

/** `POST /runs`: the parser and the schema it is built on. */
export const RUN_REQUEST_CONTRACT = { parse: parseRunRequest, schema: RunRequestSchema };
