import { timingSafeEqual } from 'node:crypto';
import { type Client, type ClientEntry, hashToken } from '@fleet/config';

/**
 * Token checking: the clients allowed to drive the fleet, from the clients file's names, roles and SHA-256
 * hashes of their tokens (no token is stored). A presented token is hashed and compared with every client's
 * hash in constant time.
 */
export class TokenStore {
  private readonly entries: Array<{ client: Client; hash: Buffer }>;

  constructor(entries: readonly ClientEntry[]) {
    this.entries = entries.map((e) => ({ client: { name: e.name, roles: new Set(e.roles) }, hash: Buffer.from(e.tokenSha256, 'hex') }));
  }

  get size(): number {
    return this.entries.length;
  }

  /** The client the token belongs to, or undefined. Every entry is compared, whatever matched. */
  authenticate(token: string): Client | undefined {
    const presented = hashToken(token);
    let found: Client | undefined;
    for (const e of this.entries) if (timingSafeEqual(presented, e.hash)) found = e.client;
    return found;
  }
}

/**
 * For `configureHttpApp`: whether an `Authorization` header names a known client, checked before a body is read.
 * Undefined without a clients file (every request is admitted, as the guard admits it).
 */
export function bodyAdmission(clients: readonly ClientEntry[] | null): ((authorization: string | undefined) => boolean) | undefined {
  if (!clients) return undefined;
  const tokens = new TokenStore(clients);
  return (header) => {
    const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    return match !== null && tokens.authenticate(match[1]) !== undefined;
  };
}
