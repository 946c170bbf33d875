import { isolatedSuite, waitFor } from '@fleet/testing';
import { startCoordinator } from './coordinator-harness.js';
import { seedConfigFiles } from './fixtures.js';

/**
 * A closed coordinator leaves no connection open: every Redis client it made ends with it. On a Redis of the test's
 * own, so the server's client list holds only this test's clients. (One connection was never closed, which kept
 * every test process with an in-process coordinator alive after its tests.)
 */
describe('a coordinator that is closed', () => {
  const suite = isolatedSuite('shutdown', seedConfigFiles(), { privateRedis: {} });

  /** The names of the server's clients other than this test's own connection. */
  const others = async (): Promise<string[]> => {
    const list = (await suite.redis.client('LIST')) as string;
    const own = await suite.redis.client('ID');
    return list
      .split('\n')
      .filter((line) => line.startsWith('id=') && !line.startsWith(`id=${own} `))
      .map((line) => /(?:^| )name=(\S*)/.exec(line)?.[1] || '(no name)');
  };

  it('ends every Redis connection it opened', async () => {
    const coordinator = await startCoordinator({ prefix: suite.prefix, configDir: suite.config.path, env: { REDIS_URL: suite.redisUrl } });
    // It is in use: a task queued, a run and a build joined (each part opens what it needs).
    await coordinator.http
      .post('/tasks')
      .send({ type: 'synthetic', name: 'one', config: { duration_ms: 1 } })
      .expect(201);
    const open = await others();
    expect(open).toEqual(expect.arrayContaining(['coordinator-builds']));
    await coordinator.close();
    await waitFor(async () => ((await others()).length === 0 ? true : undefined), {
      what: 'the closed coordinator to end its connections',
      timeoutMs: 10_000,
    }).catch(async (err: Error) => {
      throw new Error(`${err.message}; still open: ${(await others()).join(', ')}`);
    });
  });
});
