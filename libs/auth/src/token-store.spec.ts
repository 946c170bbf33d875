import { hashToken } from '@fleet/config';
import { TokenStore } from './token-store.js';

const entry = (name: string, token: string, roles: Array<'submit' | 'operate' | 'read'>) => ({
  name,
  roles,
  tokenSha256: hashToken(token).toString('hex'),
});

describe('TokenStore: which client a presented token belongs to', () => {
  const store = new TokenStore([entry('ci', 'fleet_ci-secret', ['submit', 'read']), entry('ops', 'fleet_ops-secret', ['operate'])]);

  it.each([
    ['a client’s token', 'fleet_ci-secret', 'ci'],
    ['another client’s', 'fleet_ops-secret', 'ops'],
    ['a token nobody holds', 'fleet_nobody', undefined],
    ['a prefix of a real token', 'fleet_ci-secre', undefined],
    ['the hash itself, presented as a token', hashToken('fleet_ci-secret').toString('hex'), undefined],
    ['empty', '', undefined],
  ])('%s', (_name, token, client) => {
    expect(store.authenticate(token)?.name).toBe(client);
  });

  it('gives the client its roles', () => {
    expect([...(store.authenticate('fleet_ci-secret')?.roles ?? [])]).toEqual(['submit', 'read']);
    expect(store.size).toBe(2);
  });
});
