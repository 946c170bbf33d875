import 'reflect-metadata';
import { runMain, serveHttpApp } from '@fleet/app';
import { loadCoordinatorSettings } from './coordinator-settings.js';
import { createCoordinatorApp } from './coordinator-app.js';

await runMain('coordinator', async () => {
  const settings = loadCoordinatorSettings(process.env);
  const app = await createCoordinatorApp(settings);
  await serveHttpApp('coordinator', app, settings);
  return { close: () => app.close(), shutdownGraceMs: settings.shutdownGraceMs };
});
