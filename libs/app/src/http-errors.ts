import { STATUS_CODES } from 'node:http';
import { HttpException, HttpStatus } from '@nestjs/common';
import type { FieldError } from '@fleet/contracts';
import { describeFieldErrors } from '@fleet/contracts';

/** The one error body every HTTP API of the fleet returns. */
export interface ErrorBody {
  statusCode: number;
  error: string;
  message: string;
  errors: FieldError[];
}

export const statusText = (status: number): string => STATUS_CODES[status] ?? 'Error';

/** An HTTP error that names the fields at fault and the reason for each. */
export class FieldErrorsException extends HttpException {
  constructor(status: HttpStatus, errors: FieldError[]) {
    const body: ErrorBody = { statusCode: status, error: statusText(status), message: describeFieldErrors(errors), errors };
    super(body, status);
  }
}

export const badRequest = (errors: FieldError[]) => new FieldErrorsException(HttpStatus.BAD_REQUEST, errors);
export const notFound = (field: string, reason: string) => new FieldErrorsException(HttpStatus.NOT_FOUND, [{ field, reason }]);
export const conflict = (field: string, reason: string) => new FieldErrorsException(HttpStatus.CONFLICT, [{ field, reason }]);
export const unprocessable = (errors: FieldError[]) => new FieldErrorsException(HttpStatus.UNPROCESSABLE_ENTITY, errors);

/** The error body as OpenAPI describes it (every error answer of every route). */
export const ERROR_BODY_OPENAPI = {
  type: 'object',
  required: ['statusCode', 'error', 'message', 'errors'],
  properties: {
    statusCode: { type: 'integer' },
    error: { type: 'string' },
    message: { type: 'string' },
    errors: {
      type: 'array',
      items: { type: 'object', required: ['field', 'reason'], properties: { field: { type: 'string' }, reason: { type: 'string' } } },
    },
  },
};
