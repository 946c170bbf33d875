import { applyDecorators, createParamDecorator, type ExecutionContext, SetMetadata } from '@nestjs/common';
import { ApiBearerAuth, ApiResponse } from '@nestjs/swagger';
import { ERROR_BODY_OPENAPI } from '@fleet/app';
import type { Client, Role } from '@fleet/config';

export const ACCESS = 'fleet:access';

/** Who may call a route: anyone (`public`: liveness and health), or a client holding one of the roles. */
export type AccessRule = 'public' | readonly Role[];

/**
 * Declares, next to the handler, who may call it. A route without a declaration is refused to everyone (the
 * guard fails closed), so a new route cannot be open by accident.
 */
export const Access = (rule: AccessRule) =>
  applyDecorators(
    SetMetadata(ACCESS, rule),
    // The same declaration documents the route: who may call it, and the answers that follow from that.
    ...(rule === 'public'
      ? []
      : [
          ApiBearerAuth(),
          ApiResponse({ status: 401, description: 'no token, or a token no client holds', schema: ERROR_BODY_OPENAPI }),
          ApiResponse({ status: 403, description: `the client lacks the role (${rule.join(' or ')})`, schema: ERROR_BODY_OPENAPI }),
          ApiResponse({ status: 429, description: 'over the client’s rate limit (Retry-After says when to come back)', schema: ERROR_BODY_OPENAPI }),
          ApiResponse({ status: 503, description: 'Redis is unreachable or refused the write: nothing was done', schema: ERROR_BODY_OPENAPI }),
        ]),
  );

/** Reading: every client that reads (read, operate) and, for their own tasks, submitters. */
export const READERS: readonly Role[] = ['read', 'operate'];
export const SUBMITTERS: readonly Role[] = ['submit'];
export const OPERATORS: readonly Role[] = ['operate'];

/** With no clients file (loopback only), every request is this client, with every role. */
export const ANONYMOUS: Client = { name: 'anonymous', roles: new Set(['submit', 'operate', 'read']) };

export interface AuthenticatedRequest {
  client?: Client;
}

/** The authenticated client of the request (`@CurrentClient() client: Client`). */
export const CurrentClient = createParamDecorator((_: unknown, ctx: ExecutionContext): Client => {
  const client = ctx.switchToHttp().getRequest<AuthenticatedRequest>().client;
  if (!client) throw new Error('CurrentClient on a public route');
  return client;
});

/** Whether the client may see every task (read, operate), or only its own (submit only). */
export const seesAllTasks = (client: Client) => client.roles.has('read') || client.roles.has('operate');
