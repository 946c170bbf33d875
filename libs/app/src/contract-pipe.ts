import { type PipeTransform } from '@nestjs/common';
import { z } from 'zod';
import { type ParseResult, toFieldErrors } from '@fleet/contracts';
import { badRequest } from './http-errors.js';

/**
 * What a route accepts: the parser that validates it (naming each bad field) and the zod schema it is built on,
 * which the OpenAPI document describes (one source for both).
 */
export interface Contract<T> {
  parse(input: unknown): ParseResult<T>;
  schema: z.ZodType;
}

/** A contract whose parser is its schema's own (strict) parse, errors named from `root`. */
export function contractOf<S extends z.ZodType>(schema: S, root = 'body'): Contract<z.output<S>> {
  return {
    schema,
    parse(input) {
      const r = schema.safeParse(input, { reportInput: true });
      return r.success ? { ok: true, value: r.data } : { ok: false, errors: toFieldErrors(r.error, root) };
    },
  };
}

/**
 * Validation at the HTTP edge with the contract's own parser (the same one the worker re-checks with):
 * `@Body(new ContractPipe(parseTask)) task: Task`. A refusal is a 400 naming every bad field.
 */
export class ContractPipe<T> implements PipeTransform<unknown, T> {
  private readonly parse: (input: unknown) => ParseResult<T>;

  constructor(contract: Contract<T> | ((input: unknown) => ParseResult<T>)) {
    this.parse = typeof contract === 'function' ? contract : (input) => contract.parse(input);
  }

  transform(value: unknown): T {
    if (value === undefined) throw badRequest([{ field: 'body', reason: 'is required: send a JSON object with Content-Type: application/json' }]);
    const result = this.parse(value);
    if (!result.ok) throw badRequest(result.errors);
    return result.value;
  }
}

/** `?limit=` as every list route takes it: a whole number from 1 to `max`, `fallback` when absent. */
export const limitParam = (fallback: number, max = 1000) =>
  z
    .string()
    .regex(/^\d{1,7}$/, { error: `must be a whole number from 1 to ${max}` })
    .transform(Number)
    .pipe(
      z
        .number()
        .min(1, { error: `must be a whole number from 1 to ${max}` })
        .max(max, { error: `must be a whole number from 1 to ${max}` }),
    )
    .default(fallback);

/**
 * Validates query parameters at the edge: `@Query(new ContractPipe(queryParser({ limit: limitParam(100) })))`.
 * An unknown parameter, a repeated one or a bad value is a 400 naming it.
 */
export function queryParser<S extends z.ZodRawShape>(shape: S): Contract<z.output<z.ZodObject<S>>> {
  const schema = z.strictObject(shape);
  return {
    schema,
    parse(input) {
      const r = schema.safeParse(input ?? {}, { reportInput: true });
      return r.success ? { ok: true, value: r.data } : { ok: false, errors: toFieldErrors(r.error, 'query') };
    },
  };
}

/** For routes that take no query parameters: any one given is a 400 naming it. */
export const NO_QUERY = queryParser({});
