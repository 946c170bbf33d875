import { cpuTemplate, clientsFile } from '@fleet/testing';

/** The three clients of the security suites: one per role. */
export const CLIENTS = clientsFile({ ci: ['submit'], ops: ['operate'], viewer: ['read'], other: ['submit'] });

/** A fleet's config with the clients file: one LOCAL pool `cpu` (no worker needed), quick ticks. */
export function securedConfigFiles(extra: Record<string, object | string> = {}): Record<string, object | string> {
  return { 'clients.json': CLIENTS.file, ...openConfigFiles(extra) };
}

/** The same fleet without a clients file. */
export function openConfigFiles(extra: Record<string, object | string> = {}): Record<string, object | string> {
  return {
    'worker_templates.json': { cpu: cpuTemplate() },
    'resource_manager_config.json': { min_workers: 0, max_workers: 2, polling_interval: 0.3, lease_ttl: 2 },
    'performance_analyzer_config.json': { polling_interval: 0.3 },
    ...extra,
  };
}
