import { type CanActivate, type ExecutionContext, HttpStatus, Inject, Injectable } from '@nestjs/common';
import { HttpAdapterHost, Reflector } from '@nestjs/core';
import { FieldErrorsException } from '@fleet/app';
import type { Client, SecuritySettings } from '@fleet/config';
import { ACCESS, type AccessRule, ANONYMOUS, type AuthenticatedRequest } from './access.js';
import { RateLimiter } from './rate-limiter.js';
import { TokenStore } from './token-store.js';
import { SECURITY_SETTINGS } from './tokens.js';

interface RequestLike extends AuthenticatedRequest {
  headers: Record<string, string | string[] | undefined>;
}

/**
 * Every request's gate. Authenticates `Authorization: Bearer <token>` against the clients file and checks the
 * route's declared roles: 401 without a token or with a bad one, 403 for the wrong role, 403 for a route that
 * declares none (it fails closed). Tokens are never logged; with no clients file every request is `anonymous`.
 * Then the client's rate limit (requests per minute, counted in Redis across every route and every instance
 * of the app): 429 with Retry-After beyond it. Public routes (liveness, health) skip both.
 * (@nestjs/throttler would count the same, but it is CommonJS requiring Nest 12's ESM-only core, which Jest's
 * ESM mode cannot load; the count is one Lua script.)
 */
@Injectable()
export class AccessGuard implements CanActivate {
  /** Null with no clients file: every request is `anonymous`. */
  private readonly tokens: TokenStore | null;

  constructor(
    private readonly reflector: Reflector,
    private readonly limiter: RateLimiter,
    @Inject(SECURITY_SETTINGS) private readonly security: SecuritySettings,
    private readonly adapterHost: HttpAdapterHost,
  ) {
    this.tokens = security.clients ? new TokenStore(security.clients) : null;
  }

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const rule = this.reflector.getAllAndOverride<AccessRule | undefined>(ACCESS, [ctx.getHandler(), ctx.getClass()]);
    if (rule === 'public') return true;
    if (rule === undefined) throw deny(HttpStatus.FORBIDDEN, 'route', 'declares no access rule, so it is open to no one');
    const client = this.authenticate(ctx, rule);
    ctx.switchToHttp().getRequest<RequestLike>().client = client;
    const limit = this.security.rateLimitPerMinute;
    const r = await this.limiter.hit(client.name, limit);
    this.setHeader(ctx, 'RateLimit-Limit', String(limit));
    this.setHeader(ctx, 'RateLimit-Remaining', String(r.remaining));
    this.setHeader(ctx, 'RateLimit-Reset', String(r.resetS));
    if (!r.allowed) {
      throw Object.assign(
        deny(HttpStatus.TOO_MANY_REQUESTS, 'client', `${client.name} sent more than ${limit} requests this minute (RATE_LIMIT_PER_MINUTE)`),
        {
          retryAfterS: r.resetS,
        },
      );
    }
    return true;
  }

  private authenticate(ctx: ExecutionContext, rule: Exclude<AccessRule, 'public'>): Client {
    const tokens = this.tokens;
    if (tokens === null) return ANONYMOUS;
    const header = ctx.switchToHttp().getRequest<RequestLike>().headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match) {
      this.setHeader(ctx, 'WWW-Authenticate', 'Bearer realm="fleet"');
      throw deny(HttpStatus.UNAUTHORIZED, 'Authorization', 'a token is required: send "Authorization: Bearer <token>"');
    }
    const client = tokens.authenticate(match[1]);
    if (!client) {
      this.setHeader(ctx, 'WWW-Authenticate', 'Bearer realm="fleet", error="invalid_token"');
      throw deny(HttpStatus.UNAUTHORIZED, 'Authorization', 'the token is not valid');
    }
    if (!rule.some((role) => client.roles.has(role))) {
      throw deny(HttpStatus.FORBIDDEN, 'Authorization', `client ${client.name} lacks the role this needs (${rule.join(' or ')})`);
    }
    return client;
  }

  /** Through the app's HTTP adapter: an Express response and a Fastify reply set headers differently. */
  private setHeader(ctx: ExecutionContext, name: string, value: string): void {
    this.adapterHost.httpAdapter.setHeader(ctx.switchToHttp().getResponse(), name, value);
  }
}

const deny = (status: HttpStatus, field: string, reason: string) => new FieldErrorsException(status, [{ field, reason }]);
