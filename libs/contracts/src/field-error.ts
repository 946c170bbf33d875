import type { z } from 'zod';

/** One reason a value was refused, with the dotted path of the offending field. */
export interface FieldError {
  field: string;
  reason: string;
}

/** `['tasks', 3, 'config', 'test_file']` → `tasks[3].config.test_file`; the empty path is `body`. */
export function formatPath(path: ReadonlyArray<PropertyKey>, root = 'body'): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(String(part))) out += `[${JSON.stringify(String(part))}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? root : out;
}

export function prefixField(prefix: string, field: string): string {
  if (field === 'body' || field === '') return prefix;
  return field.startsWith('[') ? `${prefix}${field}` : `${prefix}.${field}`;
}

/** Turns zod's issues into field errors a person can act on: unknown keys are named one by one. */
export function toFieldErrors(error: z.ZodError, root = 'body'): FieldError[] {
  const out: FieldError[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        out.push({ field: formatPath([...issue.path, key], root), reason: 'unknown field' });
      }
      continue;
    }
    out.push({ field: formatPath(issue.path, root), reason: reasonOf(issue) });
  }
  return out;
}

function reasonOf(issue: z.core.$ZodIssue): string {
  // Parsers run with `reportInput: true`, so a missing field can be told from a wrong one.
  if (issue.code === 'invalid_type' && 'input' in issue && issue.input === undefined) return 'is required';
  if (issue.code === 'invalid_key') return `invalid key: ${issue.issues.map((i) => i.message).join('; ')}`;
  return issue.message;
}

export function describeFieldErrors(errors: readonly FieldError[], max = 5): string {
  const shown = errors.slice(0, max).map((e) => `${e.field}: ${e.reason}`);
  const more = errors.length > max ? `; and ${errors.length - max} more` : '';
  return shown.join('; ') + more;
}
