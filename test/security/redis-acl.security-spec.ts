import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { cpuTemplate, fleetAclRules, isolatedSuite, startRedisServer, type PrivateRedis, uniquePrefix, waitFor } from '@fleet/testing';

describe("the fleet on a Redis that admits only the fleet's least-privilege ACL user", () => {
  const password = randomBytes(12).toString('hex');
  const prefix = uniquePrefix('aclfleet');
  let server: PrivateRedis;
  let url = '';
  beforeAll(async () => {
    server = await startRedisServer({
      extraArgs: ['--user', 'default', 'off', '--user', 'fleet', 'on', `>${password}`, ...fleetAclRules(`${prefix}:*`)],
    });
    url = `redis://fleet:${password}@127.0.0.1:${server.port}`;
  });
  afterAll(() => server.stop('SIGKILL'));
  const suite = isolatedSuite('acl', { 'worker_templates.json': { cpu: cpuTemplate({ concurrency: 2 }) } });

  it('cannot touch keys outside its prefix, nor run dangerous commands', async () => {
    const r = new Redis(url, { maxRetriesPerRequest: 1 });
    try {
      await r.set(`${prefix}:mine`, '1');
      for (const attempt of [
        () => r.set('elsewhere', '1'),
        () => r.get('other-fleet:idem:x'),
        () => r.keys('*'),
        () => r.flushall(),
        () => r.config('GET', 'dir'),
        () => r.publish('c', 'x'),
      ]) {
        await expect(attempt()).rejects.toThrow(/NOPERM/);
      }
    } finally {
      r.disconnect();
    }
    const anonymous = new Redis(`redis://127.0.0.1:${server.port}`, { maxRetriesPerRequest: 1, lazyConnect: true, enableReadyCheck: false });
    await expect(anonymous.connect().then(() => anonymous.get('x'))).rejects.toThrow(/NOAUTH|WRONGPASS/);
    anonymous.disconnect();
  });

  it('runs a task end to end as that user (coordinator, worker), with the password out of its logs', async () => {
    const env = { REDIS_URL: url, FLEET_PREFIX: prefix };
    const coordinator = await suite.service('coordinator', env);
    suite.worker({ pool: 'cpu', env });
    const id = (await coordinator.http.post('/tasks').send({ type: 'synthetic', name: 'as fleet' }).expect(201)).body.id;
    await waitFor(async () => (await coordinator.http.get(`/tasks/${id}`)).body.state === 'completed', { what: 'the task to complete' });
    expect(coordinator.output()).toContain(`Redis redis://fleet:***@127.0.0.1:${server.port}`);
    expect(coordinator.output()).not.toContain(password);
  });
});
