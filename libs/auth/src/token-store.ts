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
