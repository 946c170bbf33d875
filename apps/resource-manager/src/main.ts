import 'reflect-metadata';
import { listenHttpApp, runMain } from '@fleet/app';
import { loadResourceManagerSettings } from '@fleet/config';
import { ResourceManagerModule } from './resource-manager.module.js';

await runMain('resource-manager', async () => {
  const settings = loadResourceManagerSettings(process.env);
  return listenHttpApp('resource-manager', ResourceManagerModule.forRoot(settings), settings);
});
