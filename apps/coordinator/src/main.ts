import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { runMain } from '@fleet/app';
import { loadCoordinatorSettings } from '@fleet/config';
import { createCoordinatorApp } from './coordinator-app.js';

await runMain('coordinator', async () => {
  const settings = loadCoordinatorSettings(process.env);
  const app = await createCoordinatorApp(settings);
  await app.listen(settings.port, '0.0.0.0');
  new Logger('coordinator').log(
    `listening on ${await app.getUrl()} (prefix ${settings.prefix}, Redis ${settings.redisUrl}, config ${settings.configDir})`,
  );
  return { close: () => app.close(), shutdownGraceMs: settings.shutdownGraceMs };
});
