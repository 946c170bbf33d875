import type { IncomingMessage, ServerResponse } from 'node:http';
import { isLoopback, type SecuritySettings } from '@fleet/config';

/** How long an app's answer to the probe is trusted before it is asked again. */
const PROBE_TTL_MS = 30_000;

/**
 * A dashboard reachable beyond this machine must not forward to an app that admits requests without a token:
 * an app on loopback with no clients file treats every request as `anonymous` with every role, so the
 * forwarder would hand anyone who reaches the dashboard the whole fleet. Each app is asked, without a token,
 * for its metrics (the read role); one that answers 200 is refused with a 503 that says why, and asked again
 * after PROBE_TTL_MS. A dashboard on loopback, or FLEET_INSECURE=1, forwards as before.
 */
export class OpenUpstreams {
  private readonly answers = new Map<string, { at: number; open: boolean }>();

  constructor(private readonly security: SecuritySettings) {}

  get applies(): boolean {
    return !isLoopback(this.security.host) && !this.security.insecure;
  }

  private async isOpen(target: string): Promise<boolean> {
    const known = this.answers.get(target);
    if (known && Date.now() - known.at < PROBE_TTL_MS) return known.open;
    let open: boolean;
    try {
      const res = await fetch(`${target}/metrics`, { signal: AbortSignal.timeout(5_000) });
      await res.body?.cancel();
      open = res.ok;
    } catch {
      // Not reachable: the forwarder says so itself (502).
      return false;
    }
    this.answers.set(target, { at: Date.now(), open });
    return open;
  }

  /** Express middleware for the forwarder to `name` at `target`. */
  guard(name: string, target: string): (req: IncomingMessage, res: ServerResponse, next: () => void) => void {
    return (_req, res, next) => {
      if (!this.applies) return next();
      void this.isOpen(target).then((open) => {
        if (!open) return next();
        res.writeHead(503, { 'content-type': 'application/json; charset=utf-8' });
        res.end(
          JSON.stringify({
            statusCode: 503,
            error: 'Service Unavailable',
            message: `not forwarding to ${name}: it admits requests without a token, and this dashboard is reachable beyond this machine`,
            errors: [
              {
                field: name,
                reason: `${target} answered without a token; give it a clients file (the dashboard's tokens go through to it), or set FLEET_INSECURE=1 on the dashboard if that is on purpose`,
              },
            ],
          }),
        );
      });
    };
  }
}
