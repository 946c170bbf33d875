import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { loadAnalyzerConfig, loadCommonSettings, loadSecuritySettings, loadWorkerTemplates, repoRoot } from '@fleet/config';
import { TokenStore } from '@fleet/auth';
import { cpuTemplate, isolatedSuite } from '@fleet/testing';

/**
 * The Dockerfile and the Kubernetes manifests under deploy/, checked for what can be checked without a
 * cluster or an image registry: they parse, they name what exists (entry points, pools, services, secrets),
 * their configuration passes the apps' own loaders, and KEDA's trigger reads a field a real coordinator
 * serves. `kubectl kustomize` renders them when kubectl is installed; `kubectl apply --dry-run=client` needs an
 * API server (it downloads the cluster's OpenAPI and API groups), so it is not run here.
 */
type Doc = {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- manifests are free-form YAML; every field read is checked by an expect
  spec?: any;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
};

const root = repoRoot();
const deployDir = join(root, 'deploy');
const files = readdirSync(deployDir).filter((f) => f.endsWith('.yaml'));
const docs: Array<Doc & { file: string }> = files.flatMap((file) =>
  parseAllDocuments(readFileSync(join(deployDir, file), 'utf8')).map((d) => {
    if (d.errors.length > 0) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`);
    return { ...(d.toJS() as Doc), file };
  }),
);
const resources = docs.filter((d) => d.kind !== 'Kustomization');
const byKind = (kind: string) => resources.filter((d) => d.kind === kind);
const named = (kind: string, name: string) => byKind(kind).find((d) => d.metadata.name === name);
const deployments = byKind('Deployment');
const container = (d: Doc) => d.spec.template.spec.containers[0];
const envOf = (d: Doc) =>
  Object.fromEntries((container(d).env as Array<{ name: string; value?: string }>).map((e) => [e.name, e.value ?? '(from a secret)']));

describe('deploy/: the Dockerfile and the Kubernetes manifests', () => {
  const suite = isolatedSuite('deploy', { 'worker_templates.json': { cpu: cpuTemplate({ concurrency: 4 }) } });

  it('the Dockerfile is multi-stage, runs as a non-root user, and copies and starts what exists', () => {
    const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
    const lines = dockerfile.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
    const stages = lines.filter((l) => l.startsWith('FROM '));
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const last = lines.slice(lines.lastIndexOf(stages.at(-1) as string));
    const user = last.filter((l) => l.startsWith('USER ')).at(-1);
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^USER (root|0)(:|$)/);
    expect(last.some((l) => /useradd --uid 10001/.test(l))).toBe(true);
    for (const l of lines.filter((x) => x.startsWith('COPY ') && !x.includes('--from='))) {
      const sources = l.split(/\s+/).slice(1, -1);
      for (const s of sources) expect([s, existsSync(join(root, s))]).toEqual([s, true]);
    }
    const cmd = JSON.parse(/^CMD (.*)$/m.exec(dockerfile)?.[1] ?? '[]') as string[];
    expect(existsSync(join(root, cmd[0]))).toBe(true);
    expect(dockerfile).toMatch(/^ENTRYPOINT \[.*"node"\]$/m);
  });

  it('the kustomization lists every manifest, and kubectl renders it when kubectl is here', () => {
    const k = docs.find((d) => d.kind === 'Kustomization') as unknown as { resources: string[] };
    expect([...k.resources].sort()).toEqual(files.filter((f) => f !== 'kustomization.yaml').sort());
    const kubectl = spawnSync('kubectl', ['kustomize', deployDir], { encoding: 'utf8', timeout: 30_000 });
    if (kubectl.error) {
      process.stdout.write(`deploy: kubectl not installed (${kubectl.error.message}); rendering not checked\n`);
      return;
    }
    expect(kubectl.stderr).toBe('');
    expect(kubectl.status).toBe(0);
    expect(parseAllDocuments(kubectl.stdout).length).toBe(resources.length);
  });

  it('every Deployment runs the one image as non-root, starts a built app, probes its health and reads the config', () => {
    expect(deployments.map((d) => d.metadata.name).sort()).toEqual(['fleet-coordinator', 'fleet-trend-analyzer', 'fleet-worker-cpu']);
    for (const d of deployments) {
      const c = container(d);
      const env = envOf(d);
      expect([d.metadata.name, c.image]).toEqual([d.metadata.name, 'fleet:0.1.0']);
      expect(d.spec.template.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001 });
      expect(c.securityContext.allowPrivilegeEscalation).toBe(false);
      expect(existsSync(join(root, c.args[0]))).toBe(true);
      expect(c.readinessProbe.httpGet.path).toBe('/health/ready');
      expect(c.livenessProbe.httpGet.path).toBe('/health/live');
      const port = (c.ports as Array<{ containerPort: number }>)[0]?.containerPort;
      const portVar = Object.keys(env).find((k) => k.endsWith('_PORT'));
      expect([d.metadata.name, portVar && env[portVar]]).toEqual([d.metadata.name, String(port)]);
      const mounts = c.volumeMounts as Array<{ name: string; mountPath: string }>;
      expect(mounts.find((m) => m.mountPath === env.CONFIG_DIR)?.name).toBe('config');
      expect(env.FLEET_TOKENS_FILE?.startsWith(mounts.find((m) => m.name === 'tokens')?.mountPath ?? '-')).toBe(true);
      // Bound beyond loopback, so the clients file is what lets it start (checked below with the real loader).
      expect(env.HOST).toBe('0.0.0.0');
    }
    const selectorsMatch = deployments.every((d) =>
      Object.entries(d.spec.selector.matchLabels).every(([k, v]) => d.spec.template.metadata.labels[k] === v),
    );
    expect(selectorsMatch).toBe(true);
  });

  it('the ConfigMap and the example secrets pass the apps’ own loaders', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-deploy-'));
    try {
      const cm = named('ConfigMap', 'fleet-config') as Doc;
      // In the image the repository lives at /app.
      for (const [file, text] of Object.entries(cm.data ?? {})) writeFileSync(join(dir, file), text.replaceAll('/app/', `${root}/`));
      const templates = loadWorkerTemplates(dir).value;
      loadAnalyzerConfig(dir);
      for (const d of deployments.filter((x) => x.metadata.name.startsWith('fleet-worker-'))) {
        const args = container(d).args as string[];
        const pool = args[args.indexOf('--pool') + 1];
        expect(templates.map((t) => t.pool)).toContain(pool);
        expect(d.metadata.name).toBe(`fleet-worker-${pool}`);
      }
      const tokens = named('Secret', 'fleet-tokens') as Doc;
      writeFileSync(join(dir, 'clients.json'), tokens.stringData?.['clients.json'] ?? '');
      const security = loadSecuritySettings({ HOST: '0.0.0.0', FLEET_TOKENS_FILE: join(dir, 'clients.json') }, dir, 'COORDINATOR');
      const keda = new TokenStore(security.clients ?? []).authenticate(tokens.stringData?.read ?? '');
      expect(keda?.roles).toContain('read');
      const redisSecret = named('Secret', 'fleet-redis') as Doc;
      expect(loadCommonSettings({ REDIS_URL: redisSecret.stringData?.REDIS_URL }).redisUrl).toBe(redisSecret.stringData?.REDIS_URL);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('KEDA’s trigger targets a worker Deployment and reads a number a real coordinator serves at that URL', async () => {
    const scaled = byKind('ScaledObject');
    expect(scaled.length).toBeGreaterThan(0);
    const coordinator = await suite.service('coordinator');
    for (const so of scaled) {
      const target = named('Deployment', so.spec.scaleTargetRef.name) as Doc;
      expect(target).toBeDefined();
      const trigger = so.spec.triggers[0];
      expect(trigger.type).toBe('metrics-api');
      const url = new URL(trigger.metadata.url as string);
      const service = named('Service', url.hostname) as Doc;
      expect(service.spec.ports.map((p: { port: number }) => String(p.port))).toContain(url.port);
      const args = container(target).args as string[];
      expect(url.pathname).toBe(`/scaling/${args[args.indexOf('--pool') + 1]}`);
      const auth = named('TriggerAuthentication', trigger.authenticationRef.name) as Doc;
      const ref = auth.spec.secretTargetRef[0];
      expect(Object.keys(named('Secret', ref.name)?.stringData ?? {})).toContain(ref.key);
      const body = (await coordinator.http.get(url.pathname).expect(200)).body as Record<string, unknown>;
      expect(typeof body[trigger.metadata.valueLocation as string]).toBe('number');
    }
  });
});
