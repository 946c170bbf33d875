import { type PipeTransform } from '@nestjs/common';
import type { ParseResult } from '@fleet/contracts';
import { badRequest } from './http-errors.js';

/**
 * Validation at the HTTP edge with the contract's own parser (the same one the worker re-checks with):
 * `@Body(new ContractPipe(parseTask)) task: Task`. A refusal is a 400 naming every bad field.
 */
export class ContractPipe<T> implements PipeTransform<unknown, T> {
  constructor(private readonly parse: (input: unknown) => ParseResult<T>) {}

  transform(value: unknown): T {
    if (value === undefined) throw badRequest([{ field: 'body', reason: 'is required: send a JSON object with Content-Type: application/json' }]);
    const result = this.parse(value);
    if (!result.ok) throw badRequest(result.errors);
    return result.value;
  }
}
