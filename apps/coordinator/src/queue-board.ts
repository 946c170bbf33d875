import type { INestApplication } from '@nestjs/common';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import type { SecuritySettings } from '@fleet/config';
import { TokenStore } from '@fleet/auth';

export const QUEUE_BOARD_PATH = '/board';

interface Req {
  headers: Record<string, string | string[] | undefined>;
}
interface Res {
  status(code: number): Res;
  setHeader(name: string, value: string): void;
  json(body: unknown): void;
}

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
export function mountQueueBoard(app: INestApplication, queues: Queue[], security: SecuritySettings): void {
  const adapter = new ExpressAdapter();
  adapter.setBasePath(QUEUE_BOARD_PATH);
  createBullBoard({
    queues: queues.map((q) => new BullMQAdapter(q, { readOnlyMode: true })),
    serverAdapter: adapter,
    options: { uiConfig: { boardTitle: 'Fleet queues' } },
  });
  const refuse = (res: Res, status: number, reason: string) => {
    if (status === 401) res.setHeader('WWW-Authenticate', 'Basic realm="fleet queues (the password is your token)", charset="UTF-8"');
    res.status(status).json({
      statusCode: status,
      error: status === 401 ? 'Unauthorized' : 'Forbidden',
      message: `Authorization: ${reason}`,
      errors: [{ field: 'Authorization', reason }],
    });
  };
  const tokens = security.clients ? new TokenStore(security.clients) : null;
  app.use(QUEUE_BOARD_PATH, (req: Req, res: Res, next: () => void) => {
    if (tokens === null) return next();
    const token = tokenOf(req.headers.authorization);
    if (!token) return refuse(res, 401, 'a token is required (Bearer, or as the password of Basic)');
    const client = tokens.authenticate(token);
    if (!client) return refuse(res, 401, 'the token is not valid');
    if (!client.roles.has('operate')) return refuse(res, 403, `client ${client.name} lacks the operate role the queue board needs`);
    next();
  });
  app.use(QUEUE_BOARD_PATH, adapter.getRouter());
}
