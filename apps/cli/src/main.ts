// `npm run fleet -- <command>`: every command a person types, each talking to the apps over HTTP only, with
// the client token from FLEET_TOKEN. Exit codes: 0 done, 1 the thing checked failed, 2 a usage or API error.
import { survivePipeErrors } from '@fleet/app';
import { api, CliError } from './api.js';
import { demo } from './commands/demo.js';
import { report } from './commands/report.js';
import { run } from './commands/run.js';
import { decisions, pools, scale } from './commands/scale.js';
import { token } from './commands/token.js';

const USAGE = `usage: fleet <command>   (in the fleet's own repository: npm run fleet -- <command>)
  run <files|folders|globs…> [--pool cpu] [--retries 1] [--junit out.xml] [--label k=v]… [--name n]
                                  run a suite across the fleet; exits 0 passed, 1 failed, 2 error (submit, read)
  run <files|folders|globs…> --build <id> --node-index i --node-total K [--slots N] [--only-failed <build>]
                                  be node i (from 0) of a CI build's K parallel jobs: run the build's files here,
                                  from this checkout, N at a time, until none are left; exit with the verdict
  scale <pool> <workers>|auto     pin a pool at a number of workers, or return it to its policy (operate)
  pools                           pools with their size, depth, mode and last decision (read)
  decisions [pool]                the latest scaling decisions (read)
  report [--out file.html]        the trend analyzer's report as an HTML page (read)
  demo [--load N] [--file F]      submit the example tasks and synthetic load, show progress (submit, read)
  token new <client> --roles submit,read,operate [--file clients.json]
                                  make a client token (printed once; only its hash is stored)
Apps: COORDINATOR_URL, RESOURCE_MANAGER_URL, TREND_ANALYZER_URL (or their *_PORT on 127.0.0.1);
the client token: FLEET_TOKEN.`;

async function main([command, ...args]: string[]): Promise<number> {
  const a = api();
  switch (command) {
    case 'run':
      return run(a, args);
    case 'scale':
      return scale(a, args);
    case 'pools':
      return pools(a);
    case 'decisions':
      return decisions(a, args);
    case 'report':
      return report(a, args);
    case 'demo':
      return demo(a, args);
    case 'token':
      return token(args);
    default:
      console.error(USAGE);
      return 2;
  }
}

survivePipeErrors();
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`fleet: ${err.message}`);
    process.exit(err instanceof CliError ? err.exitCode : 1);
  },
);
