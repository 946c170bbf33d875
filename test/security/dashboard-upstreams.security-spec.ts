import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bearer, clientsFile, cpuTemplate, isolatedSuite } from '@fleet/testing';

// Issue 22, suspected item: a dashboard reachable beyond this machine, with tokens of its own, in front of apps
// on loopback without a clients file, forwarded anyone's requests to apps that accept everyone. Confirmed; now
// the dashboard refuses to forward to an app that answers without a token.
describe('a dashboard reachable beyond this machine', () => {
  const suite = isolatedSuite('dash-open', { 'worker_templates.json': { cpu: cpuTemplate() } });
  const { file, tokens } = clientsFile({ ops: ['read', 'submit', 'operate'] });
  const tokensFile = () => join(suite.config.path, 'fleet-tokens.json');

  it('does not forward to an app that admits requests without a token; forwards to one that checks them', async () => {
    writeFileSync(tokensFile(), JSON.stringify(file));
    // On loopback, no clients file: every request is anonymous with every role.
    const open = await suite.service('coordinator');
    // The dashboard is ready once every app it forwards to is live: here each is that coordinator.
    const behind = (url: string) => ({ COORDINATOR_URL: url, RESOURCE_MANAGER_URL: url, TREND_ANALYZER_URL: url });
    const exposed = { DASHBOARD_HOST: '0.0.0.0', FLEET_TOKENS_FILE: tokensFile() };
    const dashboard = await suite.service('dashboard', { ...exposed, ...behind(open.url) });
    const refused = await dashboard.http.get('/api/coordinator/queues');
    expect(refused.status).toBe(503);
    expect(refused.body.errors[0]).toMatchObject({
      field: 'coordinator',
      reason: expect.stringMatching(/answered without a token; give it a clients file/),
    });
    await dashboard.http.post('/board/api/queues/cpu/pause').send({}).expect(503);
    // Nothing reached the open app through the dashboard: the queue is not paused.
    const queues = (await open.http.get('/queues').expect(200)).body as { pools: Array<{ pool: string }> };
    expect(queues.pools.map((p) => p.pool)).toEqual(['cpu']);

    // The same, on purpose: forwarded.
    const insecure = await suite.service('dashboard', { ...exposed, ...behind(open.url), FLEET_INSECURE: '1' });
    await insecure.http.get('/api/coordinator/queues').expect(200);

    // An app that checks tokens: forwarded, and it decides (no token 401, the client's token 200).
    const guarded = await suite.service('coordinator', { FLEET_TOKENS_FILE: tokensFile() });
    const front = await suite.service('dashboard', { ...exposed, ...behind(guarded.url) });
    await front.http.get('/api/coordinator/queues').expect(401);
    await front.http.get('/api/coordinator/queues').set(bearer(tokens.ops)).expect(200);
  });
});
