import { Body, Query } from '@nestjs/common';
import { ApiBody, ApiQuery, ApiResponse } from '@nestjs/swagger';
import { z } from 'zod';
import { type Contract, ContractPipe, ERROR_BODY_OPENAPI } from '@fleet/app';

/** A zod schema as OpenAPI 3.0 describes it (the request side: what a client sends). */
export function openApiSchema(schema: z.ZodType): Record<string, unknown> {
  return z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', unrepresentable: 'any' });
}

const ERROR_400 = { status: 400, description: 'a field is missing or wrong: `errors` names each field and the reason', schema: ERROR_BODY_OPENAPI };

function onMethod(target: object, key: string | symbol | undefined, decorators: MethodDecorator[]): void {
  if (key === undefined) throw new Error('validation decorators go on a handler’s parameter');
  const descriptor = Object.getOwnPropertyDescriptor(target, key) as PropertyDescriptor;
  for (const d of decorators) d(target, key, descriptor);
}

/**
 * The request body, validated by the contract's parser (a 400 naming each field) and documented in OpenAPI from
 * the contract's own zod schema: one source for both.
 */
export const ValidBody =
  <T>(contract: Contract<T>, description?: string): ParameterDecorator =>
  (target, key, index) => {
    Body(new ContractPipe(contract))(target, key, index);
    onMethod(target, key, [ApiBody({ schema: openApiSchema(contract.schema), ...(description && { description }) }), ApiResponse(ERROR_400)]);
  };

/** The query string, validated and documented the same way: each parameter of the contract's object schema. */
export const ValidQuery =
  <T>(contract: Contract<T>): ParameterDecorator =>
  (target, key, index) => {
    Query(new ContractPipe(contract))(target, key, index);
    const json = openApiSchema(contract.schema) as { properties?: Record<string, Record<string, unknown>>; required?: string[] };
    const params = Object.entries(json.properties ?? {}).map(([name, schema]) =>
      ApiQuery({
        name,
        required: (json.required ?? []).includes(name),
        schema,
        ...(typeof schema.description === 'string' && { description: schema.description }),
      }),
    );
    onMethod(target, key, [...params, ApiResponse(ERROR_400)]);
  };
