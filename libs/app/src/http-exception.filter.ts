import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, type HttpServer, Logger } from '@nestjs/common';
import { isRedisRefusal, isRedisUnavailable } from '@fleet/redis';
import { type ErrorBody, statusText } from './http-errors.js';

const tooLarge = (limit: unknown): ErrorBody => ({
  statusCode: 413,
  error: 'Payload Too Large',
  message: `body: larger than the limit of ${String(limit)} bytes`,
  errors: [{ field: 'body', reason: `larger than the limit of ${String(limit)} bytes` }],
});

/**
 * What Fastify reports before a handler runs, by its `code`: an oversize body (the route's limit is read from
 * the request), a content type no parser accepts, a Content-Length that does not match the body.
 */
function fastifyBodyError(err: unknown, request: unknown): ErrorBody | undefined {
  const e = err as { code?: unknown; message?: unknown };
  switch (e?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return tooLarge((request as { routeOptions?: { bodyLimit?: number } }).routeOptions?.bodyLimit);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': {
      const type = (request as { headers?: Record<string, unknown> }).headers?.['content-type'];
      const reason = `a body of type ${JSON.stringify(String(type))} is not accepted: send application/json`;
      return { statusCode: 415, error: 'Unsupported Media Type', message: `Content-Type: ${reason}`, errors: [{ field: 'Content-Type', reason }] };
    }
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return {
        statusCode: 400,
        error: 'Bad Request',
        message: 'Content-Length: does not match the body sent',
        errors: [{ field: 'Content-Length', reason: 'does not match the body sent' }],
      };
    default:
      return undefined;
  }
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
      return tooLarge(e.limit);
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

/**
 * Every error leaves as `ErrorBody`; Redis being down is a 503, anything unexpected a logged 500. It answers
 * through the app's HTTP adapter, so one filter serves the Express apps and the Fastify one.
 */
@Catch()
export class HttpExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('http');

  constructor(private readonly http: HttpServer) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const res: unknown = host.switchToHttp().getResponse();
    const body = this.toBody(exception, host.switchToHttp().getRequest());
    if (this.http.isHeadersSent(res)) return;
    // A refusal that knows when to come back (a limit) says so.
    const retryAfterS = (exception as { retryAfterS?: unknown } | null)?.retryAfterS;
    if (typeof retryAfterS === 'number') this.http.setHeader(res, 'Retry-After', String(retryAfterS));
    // An error is JSON whatever the route's own content type (a page route declares text/html).
    this.http.setHeader(res, 'Content-Type', 'application/json; charset=utf-8');
    this.http.reply(res, body, body.statusCode);
  }

  private toBody(exception: unknown, request: unknown): ErrorBody {
    // Nest's adapters wrap the body parsers' errors in an HttpException whose cause is the original.
    const cause = (exception as { cause?: unknown })?.cause;
    const parserError =
      bodyParserError(exception) ?? bodyParserError(cause) ?? fastifyBodyError(exception, request) ?? fastifyBodyError(cause, request);
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
