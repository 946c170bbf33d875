import { z } from 'zod';
import { CASE_LIMITS, FAILURE_LIMITS, PoolNameSchema, type TestCase } from '@fleet/contracts';
import { MAX_RETRIES, MAX_RUN_FILES, RunRequestSchema } from './run-request.js';

/**
 * CI nodes as workers: every parallel job of a CI build runs `fleet run … --build <id>`. The first call makes
 * the build's run; every call then serves it, taking files from the run's own queue over HTTP (leases), running
 * them from its own checkout and reporting each outcome. These are the bodies of those calls.
 */

/** A build id as CI names it (GitHub's run id and attempt, GitLab's pipeline id): letters, digits, `_ . : -`. */
export const BUILD_ID = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$/;
export const BUILD_ID_RULE = 'build ids are 1-128 letters, digits and _ . : - (starting with a letter, digit or _)';
/** A node's name for itself within a build (the CLI uses `<index>@<host>:<pid>`). */
const NodeSchema = z
  .string({ error: 'must be a string' })
  .regex(/^[A-Za-z0-9_][A-Za-z0-9_.:@-]{0,99}$/, { error: 'node names are 1-100 letters, digits and _ . : @ -' });
const TokenSchema = z.string({ error: 'must be a string' }).regex(/^[A-Za-z0-9-]{8,100}$/, { error: 'must be the token the lease gave' });
export const MAX_NODE_SLOTS = 64;
export const MAX_LEASE_WAIT_MS = 10_000;

/** A test file as a node names it: relative to its checkout, no globs (the node expands them itself). */
const FileSchema = RunRequestSchema.shape.tests.unwrap().element.refine((p) => !/[*?[{]/.test(p) && !p.endsWith('/'), {
  error: 'must be a file (the CLI expands folders and globs in the checkout)',
});

export const JoinBuildSchema = z.strictObject({
  node: NodeSchema,
  node_index: z.int({ error: 'must be a whole number' }).min(0).max(1023, { error: 'must be at most 1023' }),
  node_total: z.int({ error: 'must be a whole number' }).min(1).max(1024, { error: 'must be at most 1024' }),
  slots: z
    .int({ error: 'must be a whole number' })
    .min(1)
    .max(MAX_NODE_SLOTS, { error: `must be at most ${MAX_NODE_SLOTS}` }),
  /** What the node found in its checkout; the first node's list makes the run. */
  tests: z
    .array(FileSchema)
    .min(1, { error: 'a build needs at least one test file' })
    .max(MAX_RUN_FILES, { error: `at most ${MAX_RUN_FILES} files` }),
  name: RunRequestSchema.shape.name.optional(),
  pool: PoolNameSchema.optional(),
  retries: z
    .int({ error: `must be a whole number from 0 to ${MAX_RETRIES}` })
    .min(0)
    .max(MAX_RETRIES, { error: `must be at most ${MAX_RETRIES}` })
    .default(0),
  timeout_ms: RunRequestSchema.shape.timeout_ms,
  labels: RunRequestSchema.shape.labels,
  /** Run only the files that failed (or could not run) in that earlier build: Knapsack's "retry only failed". */
  only_failed_of: z.string().regex(BUILD_ID, { error: BUILD_ID_RULE }).optional(),
});
export type JoinBuild = z.output<typeof JoinBuildSchema>;

export const LeaseSchema = z.strictObject({
  node: NodeSchema,
  /** How many files the node can start now (its free slots). */
  want: z
    .int({ error: 'must be a whole number' })
    .min(0)
    .max(MAX_NODE_SLOTS, { error: `must be at most ${MAX_NODE_SLOTS}` }),
  /** With nothing to hand out now, wait up to this long for a file (a retry, one another node gave back) or the end. */
  wait_ms: z
    .int({ error: 'must be whole milliseconds' })
    .min(0)
    .max(MAX_LEASE_WAIT_MS, { error: `must be at most ${MAX_LEASE_WAIT_MS}` })
    .default(0),
});
export type LeaseRequest = z.output<typeof LeaseSchema>;

export const RenewSchema = z.strictObject({ node: NodeSchema, token: TokenSchema });
export type RenewRequest = z.output<typeof RenewSchema>;

const CaseSchema = z.strictObject({
  name: z.string().max(1000),
  classname: z.string().max(1000),
  time_s: z.number().min(0),
  status: z.enum(['passed', 'failed', 'error', 'skipped']),
  message: z
    .string()
    .max(CASE_LIMITS.messageChars * 4)
    .optional(),
  output: z
    .string()
    .max(CASE_LIMITS.outputChars * 4)
    .optional(),
}) satisfies z.ZodType<TestCase>;

/** What a node reports of one attempt it ran: passed, or failed with why (the node never decides retries). */
export const AttemptReportSchema = z
  .strictObject({
    node: NodeSchema,
    token: TokenSchema,
    status: z.enum(['passed', 'failed']),
    reason: z
      .enum(['test_failed', 'timeout', 'spawn_failed', 'invalid_task'], { error: 'must be test_failed, timeout, spawn_failed or invalid_task' })
      .optional(),
    message: z
      .string()
      .max(FAILURE_LIMITS.messageChars * 4)
      .default(''),
    exit_code: z.int().nullable().default(null),
    duration_ms: z
      .int({ error: 'must be whole milliseconds' })
      .min(0)
      .max(7 * 24 * 3_600_000),
    output_tail: z
      .string()
      .max(64 * 1024, { error: 'must be at most 64 KiB (the end of the output)' })
      .default(''),
    cases: z
      .array(CaseSchema)
      .max(CASE_LIMITS.cases, { error: `at most ${CASE_LIMITS.cases} cases` })
      .optional(),
    /** Files the node can start now: the answer carries their leases (one round trip per file, not two). */
    want: z
      .int({ error: 'must be a whole number' })
      .min(0)
      .max(MAX_NODE_SLOTS, { error: `must be at most ${MAX_NODE_SLOTS}` })
      .default(0),
  })
  .refine((r) => (r.status === 'failed') === (r.reason !== undefined), {
    error: 'a failed attempt names its reason, a passed one none',
    path: ['reason'],
  });
export type AttemptReport = z.output<typeof AttemptReportSchema>;

/** One file a node may run now: hold it with `token`, renew it within `lease_ms`, report it once. */
export interface Lease {
  task_id: string;
  token: string;
  file: string;
  attempt: number;
  timeout_ms: number;
}

/** What recording an attempt answers: whether it was the file's last, and the next files when the node wanted some. */
export interface ReportAnswer {
  final: boolean;
  state: string;
  leases: Lease[];
}

export interface LeaseAnswer {
  leases: Lease[];
  lease_ms: number;
  /** The run's state once it has ended (then there is nothing more to lease); undefined while it runs. */
  ended?: string;
}
