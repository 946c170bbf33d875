import { randomBytes } from 'node:crypto';
import { hashToken, type Role } from '@fleet/config';

/** A clients.json body and the tokens of its clients, for tests of authentication. */
export function clientsFile(clients: Record<string, Role[]>): { file: object; tokens: Record<string, string> } {
  const tokens: Record<string, string> = {};
  const entries: Record<string, { roles: Role[]; token_sha256: string }> = {};
  for (const [name, roles] of Object.entries(clients)) {
    tokens[name] = `fleet_${randomBytes(32).toString('base64url')}`;
    entries[name] = { roles, token_sha256: hashToken(tokens[name]).toString('hex') };
  }
  return { file: { clients: entries }, tokens };
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
