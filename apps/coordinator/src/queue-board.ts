import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Queue } from 'bullmq';
import type { SecuritySettings } from '@fleet/config';
import { refusal } from '@fleet/app';
import { TokenStore } from '@fleet/auth';

export const QUEUE_BOARD_PATH = '/board';

/** The client a request's `Authorization` names: `Bearer <token>`, or Basic with the token as password (a browser's prompt). */
function tokenOf(header: string | string[] | undefined): string | undefined {
  if (typeof header !== 'string') return undefined;
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (bearer) return bearer[1];
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!basic) return undefined;
  const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
  return decoded.slice(decoded.indexOf(':') + 1) || undefined;
}

/**
 * bull-board (job-level inspection: every job of every pool's queue, its data, attempts, logs and errors) at
 * `/board`, read-only (its write calls answer 405), for clients with the operate role: a bearer token, or in a
 * browser the token as the password of the Basic prompt. With no clients file (loopback only) it is open like
 * every other route.
 */
export async function mountQueueBoard(app: NestFastifyApplication, queues: Queue[], security: SecuritySettings): Promise<void> {
  const adapter = new FastifyAdapter();
  adapter.setBasePath(QUEUE_BOARD_PATH);
  createBullBoard({
    queues: queues.map((q) => new BullMQAdapter(q, { readOnlyMode: true })),
    serverAdapter: adapter,
    options: { uiConfig: { boardTitle: 'Fleet queues' } },
  });
  const refuse = (reply: FastifyReply, status: number, reason: string) => {
    if (status === 401) void reply.header('WWW-Authenticate', 'Basic realm="fleet queues (the password is your token)", charset="UTF-8"');
    void reply
      .code(status)
      .type('application/json; charset=utf-8')
      .send(refusal(status, 'Authorization', reason));
  };
  const tokens = security.clients ? new TokenStore(security.clients) : null;
  // The board's own scope: its check runs before any of its routes, and nothing outside /board sees it.
  await app.register(
    (scope: FastifyInstance, _opts: unknown, done: (err?: Error) => void) => {
      scope.addHook('onRequest', (req: FastifyRequest, reply: FastifyReply, next: () => void) => {
        if (tokens === null) return next();
        const token = tokenOf(req.headers.authorization);
        if (!token) return refuse(reply, 401, 'a token is required (Bearer, or as the password of Basic)');
        const client = tokens.authenticate(token);
        if (!client) return refuse(reply, 401, 'the token is not valid');
        if (!client.roles.has('operate')) return refuse(reply, 403, `client ${client.name} lacks the operate role the queue board needs`);
        next();
      });
      void scope.register(adapter.registerPlugin());
      done();
    },
    { prefix: QUEUE_BOARD_PATH },
  );
}
