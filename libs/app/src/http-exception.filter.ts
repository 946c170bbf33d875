import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import { isRedisRefusal, isRedisUnavailable } from '@fleet/redis';
import { type ErrorBody, statusText } from './http-errors.js';

interface HttpResponseLike {
  status(code: number): HttpResponseLike;
  json(body: unknown): void;
  setHeader(name: string, value: string): void;
  headersSent?: boolean;
}

/** What body-parser reports, by its `type`: malformed JSON, an oversize body, a bad charset. */
function bodyParserError(err: unknown): ErrorBody | undefined {
  const e = err as { type?: unknown; limit?: unknown; message?: unknown };
  if (typeof e?.type !== 'string') return undefined;
  switch (e.type) {
    case 'entity.parse.failed':
      return {
        statusCode: 400,
        error: 'Bad Request',
        message: `body: malformed JSON: ${String(e.message)}`,
        errors: [{ field: 'body', reason: `malformed JSON: ${String(e.message)}` }],
      };
    case 'entity.too.large':
      return {
        statusCode: 413,
        error: 'Payload Too Large',
        message: `body: larger than the limit of ${String(e.limit)} bytes`,
        errors: [{ field: 'body', reason: `larger than the limit of ${String(e.limit)} bytes` }],
      };
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return {
        statusCode: 415,
        error: 'Unsupported Media Type',
        message: `body: ${String(e.message)}`,
        errors: [{ field: 'body', reason: String(e.message) }],
      };
    default:
      return undefined;
  }
}

/** Every error leaves as `ErrorBody`; Redis being down is a 503, anything unexpected a logged 500. */
@Catch()
export class HttpExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('http');

  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<HttpResponseLike>();
    const body = this.toBody(exception);
    if (res.headersSent) return;
    // A refusal that knows when to come back (a limit) says so.
    const retryAfterS = (exception as { retryAfterS?: unknown } | null)?.retryAfterS;
    if (typeof retryAfterS === 'number') res.setHeader('Retry-After', String(retryAfterS));
    // An error is JSON whatever the route's own content type (a page route declares text/html).
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.status(body.statusCode).json(body);
  }

  private toBody(exception: unknown): ErrorBody {
    // Nest's Express adapter wraps body-parser's errors in an HttpException whose cause is the original.
    const parserError = bodyParserError(exception) ?? bodyParserError((exception as { cause?: unknown })?.cause);
    if (parserError) return parserError;
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const response = exception.getResponse();
      if (typeof response === 'object' && response !== null && 'errors' in response) return response as ErrorBody;
      const inner = (response as { message?: unknown }).message;
      const message = typeof response === 'string' ? response : typeof inner === 'string' ? inner : exception.message;
      return { statusCode: status, error: statusText(status), message, errors: [] };
    }
    if (isRedisRefusal(exception)) {
      const message = (exception as Error).message;
      return { statusCode: 503, error: 'Service Unavailable', message: `Redis refused the write, so nothing was done: ${message}`, errors: [] };
    }
    if (isRedisUnavailable(exception)) {
      return { statusCode: 503, error: 'Service Unavailable', message: `Redis is unavailable: ${(exception as Error).message}`, errors: [] };
    }
    this.logger.error(exception instanceof Error ? (exception.stack ?? exception.message) : String(exception));
    return { statusCode: 500, error: 'Internal Server Error', message: 'internal error (logged on the server)', errors: [] };
  }
}
