/**
 * Output that nobody reads any more (`npm start | tee log` after Ctrl-C, a supervisor killed while its child
 * still logs) must never take the process down: EPIPE and any other write error on stdout or stderr is
 * swallowed, and the process goes on draining as documented.
 */
export function survivePipeErrors(): void {
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
}
