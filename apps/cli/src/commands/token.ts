import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { hashToken, ROLES, type Role } from '@fleet/config';
import { CliError } from '../api.js';

/**
 * `fleet token new <client> --roles submit[,read,operate] [--file clients.json]`: makes a random token for a
 * client, prints it once, and adds the client with the token's SHA-256 (never the token) to the clients file
 * (or prints the entry to add). The apps read the file at start-up.
 */
export function token([sub, name, ...argv]: string[]): number {
  if (sub !== 'new' || !name) throw new CliError('usage: fleet token new <client> --roles submit,read,operate [--file clients.json]', 2);
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new CliError('client: must be 1-64 letters, digits, _ . or -', 2);
  const { values } = parseArgs({ args: argv, options: { roles: { type: 'string' }, file: { type: 'string' } } });
  const roles = (values.roles ?? '').split(',').filter(Boolean);
  const unknown = roles.filter((r) => !(ROLES as readonly string[]).includes(r));
  if (roles.length === 0 || unknown.length > 0)
    throw new CliError(`--roles: name one or more of ${ROLES.join(', ')}${unknown.length ? ` (not ${unknown.join(', ')})` : ''}`, 2);
  const secret = `fleet_${randomBytes(32).toString('base64url')}`;
  const entry = { roles: roles as Role[], token_sha256: hashToken(secret).toString('hex') };
  if (values.file) {
    const file = existsSync(values.file) ? (JSON.parse(readFileSync(values.file, 'utf8')) as { clients?: Record<string, unknown> }) : {};
    const clients = { ...(file.clients ?? {}), [name]: entry };
    writeFileSync(values.file, `${JSON.stringify({ ...file, clients }, null, 2)}\n`, { mode: 0o600 });
    console.error(`client ${name} (${roles.join(', ')}) written to ${values.file}; restart the apps to load it`);
  } else {
    console.error(`add this client to clients.json (in CONFIG_DIR, or the file FLEET_TOKENS_FILE names):`);
    console.error(JSON.stringify({ [name]: entry }, null, 2));
  }
  console.error('the token (shown once; give it to the client as FLEET_TOKEN):');
  console.log(secret);
  return 0;
}
