import { z } from 'zod';
import { BENCHMARK_PLACEHOLDERS, COMMON_PLACEHOLDERS, TEST_PLACEHOLDERS, unknownPlaceholders } from './command-template.js';
import { repoUrlProblem } from './source.js';
import { CapabilityNameSchema } from './task.js';
import type { TestCase } from './test-case.js';

/** What a test runner's exit code may mean for its file (`runners.exit_codes`). */
export const EXIT_MEANINGS = ['passed', 'skipped', 'failed'] as const;
export type ExitMeaning = (typeof EXIT_MEANINGS)[number];

export const POOL_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export const PoolNameSchema = z
  .string()
  .regex(POOL_NAME, { error: 'pool names are 1-63 lowercase letters, digits, _ or -, starting with a letter or digit' })
  .refine((p) => !isCiQueue(p), { error: 'pool names starting with "ci-" are kept for CI builds\' queues' });

/** The queue of a CI build's run: its nodes take only its tasks (a queue of its own per run). */
export const ciQueueName = (runId: string): string => `ci-${runId}`;
export const isCiQueue = (name: string): boolean => name.startsWith('ci-');

/** `LOCAL`: the resource manager runs this pool's workers as child processes. `MANUAL`: workers are started by hand (any host); the resource manager only counts them. */
export const PROVIDERS = ['LOCAL', 'MANUAL'] as const;

const positive = (max: number) =>
  z
    .number({ error: 'must be a number' })
    .gt(0, { error: 'must be greater than 0' })
    .max(max, { error: `must be at most ${max}` });

const argvSchema = (known: readonly string[]) =>
  z
    .array(z.string({ error: 'must be a string' }).min(1, { error: 'must not be empty' }), { error: 'must be an array of strings (argv, no shell)' })
    .min(1, { error: 'must name a program' })
    .superRefine((argv, ctx) => {
      for (const name of unknownPlaceholders(argv, known)) {
        ctx.addIssue({ code: 'custom', message: `unknown placeholder {${name}}; known: ${known.map((k) => `{${k}}`).join(', ')}` });
      }
    });

export const WorkerTemplateSchema = z.strictObject({
  pool: PoolNameSchema.optional(),
  provider: z
    .enum(PROVIDERS, {
      error: 'must be LOCAL (the resource manager runs worker processes) or MANUAL (workers are started by hand); cloud providers are not supported',
    })
    .default('LOCAL'),
  /** Seed keys that mean nothing here; accepted so the seed's file loads, and reported as ignored. */
  instance_type: z.string().optional(),
  startup_script: z.string().optional(),
  resources: z
    .strictObject({
      cpu: z.int({ error: 'must be a whole number of CPUs' }).min(1, { error: 'must be at least 1' }).max(4096, { error: 'must be at most 4096' }),
      gpu: z
        .int({ error: 'must be a whole number of GPUs' })
        .min(0, { error: 'must be at least 0' })
        .max(1024, { error: 'must be at most 1024' })
        .optional(),
      threads: z
        .int({ error: 'must be a whole number' })
        .min(1, { error: 'must be at least 1' })
        .max(65536, { error: 'must be at most 65536' })
        .optional(),
      memory_gb: positive(1 << 20).optional(),
      disk_gb: positive(1 << 24).optional(),
    })
    .default({ cpu: 1 }),
  capabilities: z.array(CapabilityNameSchema).max(64, { error: 'at most 64 capabilities' }).default([]),
  concurrency: z
    .int({ error: 'must be a whole number' })
    .min(1, { error: 'must be at least 1' })
    .max(256, { error: 'must be at most 256' })
    .optional(),
  /** Directory the runners start in and `test_file` is resolved against; relative to the templates file. */
  workdir: z.string().min(1, { error: 'must not be empty' }).optional(),
  runners: z
    .strictObject({
      /** By test-file extension, e.g. `".mjs": ["node", "--test", "{test_file}"]`. */
      test: z
        .record(z.string().regex(/^\.[A-Za-z0-9]+$/, { error: 'keys are file extensions such as .mjs' }), argvSchema(TEST_PLACEHOLDERS))
        .optional(),
      /** Prints its metrics as one JSON object on its last line of output. */
      benchmark: argvSchema(BENCHMARK_PLACEHOLDERS).optional(),
      /**
       * What a test runner's exit codes mean, by test-file extension (`".py": {"5": "skipped"}`): `passed`,
       * `skipped` (the file ran no test: pytest's 5) or `failed`. 0 is passed and anything else failed unless
       * said here; a pytest runner gets `{"5": "skipped"}` without saying.
       */
      exit_codes: z
        .record(
          z.string().regex(/^\.[A-Za-z0-9]+$/, { error: 'keys are file extensions such as .py' }),
          z.record(
            z.string().regex(/^(?:[1-9]\d{0,2}|0)$/, { error: 'keys are exit codes from 0 to 255' }),
            z.enum(EXIT_MEANINGS, { error: `must be one of ${EXIT_MEANINGS.join(', ')}` }),
          ),
        )
        .optional(),
      /**
       * Whether files with this extension run warm (`".py": false` to turn it off): a pytest runner
       * (`python -m pytest ...` or a `pytest` script) forks each file from a per-slot Python that imported pytest
       * once, instead of starting Python and pytest for every file. On by default for pytest runners.
       * `"session"`: each file runs inside one pytest session per slot, as pytest-xdist's workers run theirs
       * (no process and no session of its own per file; faster for short files, less isolated); for a `node`
       * runner, inside one Node test session per slot (no Node start-up per file; see warm-node-session.ts).
       */
      warm: z
        .record(
          z.string().regex(/^\.[A-Za-z0-9]+$/, { error: 'keys are file extensions such as .py' }),
          z.union([z.boolean(), z.literal('session')], { error: 'must be true, false or "session"' }),
        )
        .optional(),
    })
    .default({}),
  /**
   * Repositories a run of this pool may name as its source: URL patterns where `*` matches within one path
   * segment and `**` across segments (`https://git.example.com/org/*`, `file:///srv/git/**`). None: no sources.
   */
  sources: z
    .array(
      z
        .string({ error: 'must be a string' })
        .max(500, { error: 'must be at most 500 characters' })
        .superRefine((pattern, ctx) => {
          const problem = repoUrlProblem(pattern.replaceAll('*', '0'));
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        }),
    )
    .max(100, { error: 'at most 100 patterns' })
    .default([]),
  /** Runs once per host and commit in the commit's checkout before its first test (argv, no shell), e.g. ["npm", "ci"]. */
  setup: argvSchema(COMMON_PLACEHOLDERS).optional(),
  setup_timeout_ms: z
    .int({ error: 'must be a whole number of milliseconds' })
    .min(100, { error: 'must be at least 100' })
    .max(24 * 60 * 60 * 1000, { error: 'must be at most 86400000 (a day)' })
    .default(10 * 60 * 1000),
});
export type WorkerTemplateInput = z.input<typeof WorkerTemplateSchema>;

/**
 * The meaning of a test runner's exit code for its file, by the template's `exit_codes` for the file's
 * extension, else pytest's own convention when the runner is pytest (5: no tests collected, the file skipped
 * itself as a whole), else 0 passed and anything else failed.
 */
export function exitMeaning(runners: WorkerTemplate['runners'], ext: string, code: number): ExitMeaning {
  const declared = runners.exit_codes?.[ext]?.[String(code)];
  if (declared) return declared;
  if (code === 0) return 'passed';
  return isPytestRunner(runners.test[ext] ?? []) && code === PYTEST_NO_TESTS ? 'skipped' : 'failed';
}

/** A runner command that runs pytest: a `pytest` script, or `-m pytest`. */
export function isPytestRunner(argv: readonly string[]): boolean {
  return argv.some((a, i) => /(^|\/)py\.?test$/.test(a) || (a === '-m' && argv[i + 1] === 'pytest'));
}

/** How files with extension `ext` run warm: as `runners.warm` says, else forked when the runner is pytest. */
export function runsWarm(runners: WorkerTemplate['runners'], ext: string): WarmMode {
  return runners.warm?.[ext] ?? isPytestRunner(runners.test[ext] ?? []);
}

/**
 * The cases a file that ran no test reports: its runner's own when they are all skipped, else one skipped case
 * for the file saying so (so the file's view tells why it counts as skipped).
 */
export function noTestCases(file: string, durationMs: number, exitCode: number, reported: readonly TestCase[] | undefined): TestCase[] {
  if (reported && reported.length > 0 && reported.every((c) => c.status === 'skipped')) return [...reported];
  return [{ name: file, classname: file, time_s: durationMs / 1000, status: 'skipped', message: `the runner ran no test (exit ${exitCode})` }];
}

/** A runner's warm mode: false (cold), true (forked from a warm Python) or 'session' (inside one pytest session). */
export type WarmMode = boolean | 'session';

/** pytest's exit code when it collected no test (a module that skips itself as a whole, say). */
export const PYTEST_NO_TESTS = 5;

export const DEFAULT_TEST_RUNNERS: Readonly<Record<string, readonly string[]>> = {
  '.mjs': ['node', '--test', '{test_file}'],
  '.js': ['node', '--test', '{test_file}'],
  '.cjs': ['node', '--test', '{test_file}'],
};

/** A template after validation, with every default filled and its pool name resolved. */
export interface WorkerTemplate {
  id: string;
  pool: string;
  provider: (typeof PROVIDERS)[number];
  resources: { cpu: number; gpu: number; threads: number; memory_gb?: number; disk_gb?: number };
  capabilities: string[];
  concurrency: number;
  /** Absolute directory. */
  workdir: string;
  runners: {
    test: Record<string, readonly string[]>;
    benchmark?: readonly string[];
    exit_codes?: Record<string, Record<string, ExitMeaning>>;
    warm?: Record<string, WarmMode>;
  };
  /** The allow-list of repositories runs may name (URL patterns); empty: this pool runs only its workdir. */
  sources: string[];
  /** Once per host and commit, in the checkout, before its first test. */
  setup?: readonly string[];
  setup_timeout_ms: number;
}
