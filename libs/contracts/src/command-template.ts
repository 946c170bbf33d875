/**
 * Runner commands come only from worker templates. A task fills named placeholders such as
 * `{test_file}`; every argument stays one argv element and no shell ever sees it.
 */
export const COMMON_PLACEHOLDERS = ['task_id', 'attempt', 'timeout_ms', 'worker_id', 'pool'] as const;
/** `{junit_file}`: a path the runner writes its JUnit XML report to (the worker reads the test cases from it). */
export const TEST_PLACEHOLDERS = [...COMMON_PLACEHOLDERS, 'test_file', 'junit_file'] as const;
export const BENCHMARK_PLACEHOLDERS = [...COMMON_PLACEHOLDERS, 'model', 'batch_sizes', 'precision', 'iterations'] as const;

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

export function placeholdersIn(arg: string): string[] {
  return [...arg.matchAll(PLACEHOLDER)].map((m) => m[1]);
}

/** Placeholders used in `argv` that are not in `known`, for start-up validation of templates. */
export function unknownPlaceholders(argv: readonly string[], known: readonly string[]): string[] {
  return argv.flatMap(placeholdersIn).filter((name) => !known.includes(name));
}

export function fillArgv(argv: readonly string[], values: Readonly<Record<string, string>>): string[] {
  return argv.map((arg) =>
    arg.replace(PLACEHOLDER, (whole, name: string) => {
      const value = values[name];
      if (value === undefined) throw new Error(`no value for placeholder ${whole}`);
      return value;
    }),
  );
}

/** `dir/test_a.spec.mjs` → `.mjs`; a name without a dot has no extension. */
export function extensionOf(file: string): string {
  const base = file.slice(file.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(dot) : '';
}
