import { type DynamicModule, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import type { SecuritySettings } from '@fleet/config';
import { createRedis, FleetKeys } from '@fleet/redis';
import { AccessGuard } from './access.guard.js';
import { RateLimiter } from './rate-limiter.js';
import { LIMITS_KEYS, LIMITS_REDIS, SECURITY_SETTINGS } from './tokens.js';

export interface AuthOptions {
  security: SecuritySettings;
  redisUrl: string;
  prefix: string;
  /** The app's name, for its Redis connection. */
  app: string;
}

/** Authentication, roles and per-client rate limits for an HTTP app: one global guard (see AccessGuard). */
@Module({})
export class AuthModule {
  static forRoot(o: AuthOptions): DynamicModule {
    return {
      module: AuthModule,
      providers: [
        { provide: SECURITY_SETTINGS, useValue: o.security },
        { provide: LIMITS_REDIS, useFactory: () => createRedis(o.redisUrl, 'producer', `${o.app}-limits`) },
        { provide: LIMITS_KEYS, useValue: new FleetKeys(o.prefix) },
        RateLimiter,
        { provide: APP_GUARD, useClass: AccessGuard },
      ],
      exports: [SECURITY_SETTINGS],
    };
  }
}
