import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { repoRoot } from '@fleet/config';
import { cpuTemplate, isolatedSuite, type Service, waitFor } from '@fleet/testing';

/** Debian's chromium (`apt-get install -y chromium`; .ci/run installs it). Nothing here downloads a browser. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = join(repoRoot(), '.fleet', 'screenshots');

describe('the dashboard in a real browser, against a running fleet', () => {
  const suite = isolatedSuite('dash', {
    'worker_templates.json': { cpu: cpuTemplate({ concurrency: 2 }) },
    'resource_manager_config.json': {
      min_workers: 1,
      max_workers: 4,
      polling_interval: 0.3,
      scaling_strategy: 'ADAPTIVE',
      target_backlog_per_worker: 50,
      scale_down_cooldown: 600,
      lease_ttl: 2,
      stop_grace_period: 5,
    },
    'performance_analyzer_config.json': { polling_interval: 0.3, metrics_grouping: ['pool'] },
  });
  let browser: Browser;
  let page: Page;
  let coordinator: Service;
  let rm: Service;
  let dashboard: Service;
  const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  const running = () => page.locator('[data-pool="cpu"] [data-stat="running"]');
  const workerRows = () => page.locator('#workers tbody tr[data-pool="cpu"]');

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`no browser at ${CHROMIUM}: install Debian's chromium (apt-get install -y chromium) or set CHROMIUM_PATH`);
    mkdirSync(SHOTS, { recursive: true });
    coordinator = await suite.service('coordinator', { RUNS_TICK_MS: '200' });
    rm = await suite.service('resource-manager');
    const analyzer = await suite.service('trend-analyzer');
    dashboard = await suite.service('dashboard', {
      COORDINATOR_URL: coordinator.url,
      RESOURCE_MANAGER_URL: rm.url,
      TREND_ANALYZER_URL: analyzer.url,
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--no-first-run',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    suite.onCleanup(() => browser.close());
    page = await browser.newPage({ viewport: { width: 1400, height: 1600 } });
    // Traffic stays on this machine: anything the page asks of another host is refused.
    await page.route(
      (url) => url.hostname !== '127.0.0.1',
      (route) => route.abort(),
    );
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    suite.onCleanup(() => expect(problems).toEqual([]));
    await page.goto(`${dashboard.url}/`);
  });

  it('forwards requests with JSON bodies as they came: to an app (body intact) and to the queue board (answered, never left hanging)', async () => {
    const created = await dashboard.http.post('/api/coordinator/tasks').send({ type: 'synthetic', name: 'through the dashboard' }).timeout(10_000);
    expect(created.status).toBe(201);
    const task = (await coordinator.http.get(`/tasks/${created.body.id}`).expect(200)).body as { name: string };
    expect(task.name).toBe('through the dashboard');
    // bull-board is read-only: whatever it answers, it answers.
    const board = await dashboard.http.post('/board/api/queues/cpu/pause').send({ any: 'json' }).timeout(10_000);
    expect(board.status).toBeGreaterThanOrEqual(200);
  });

  it('shows the pool and its workers, live', async () => {
    await waitFor(async () => (await running().textContent()) === '1', { what: 'the page to show the pool’s one worker', timeoutMs: 20_000 });
    await waitFor(async () => (await workerRows().count()) === 1, { what: 'the worker in the workers table' });
    await expect(page.locator('[data-pool="cpu"] .badge').first().textContent()).resolves.toMatch(/^auto/);
    await shot('dashboard-pool');
  });

  it('pinning the pool from the page makes the worker count follow, without reloading the page', async () => {
    const before = await page.evaluate(() => performance.getEntriesByType('navigation' as never).length);
    await page.locator('[data-pool="cpu"] .pin-input').fill('3');
    await page.locator('[data-pool="cpu"] button.pin').click();
    // The resource manager holds the pin and starts the workers; the page follows by polling.
    await waitFor(
      async () => {
        const p = (await rm.http.get('/pools/cpu').expect(200)).body;
        if (p.ready === 3) return true;
        // Not yet: what the manager and the page show goes into the timeout's message.
        const { mode, pinned_workers, desired, running, ready, last_decision, crash_loop } = p;
        const shown = {
          badge: await page.locator('[data-pool="cpu"] .badge').first().textContent(),
          error: await page.locator('#error').textContent(),
        };
        throw new Error(JSON.stringify({ mode, pinned_workers, desired, running, ready, last_decision, crash_loop, page: shown }));
      },
      { what: 'three ready workers', timeoutMs: 30_000 },
    );
    await waitFor(async () => (await running().textContent()) === '3' && (await workerRows().count()) === 3, {
      what: 'the page to show three workers',
      timeoutMs: 10_000,
    });
    await expect(page.locator('[data-pool="cpu"] .badge').first().textContent()).resolves.toBe('pinned at 3');
    // The manager's host: it plans the fleet, runs the three workers and holds their quota.
    const host = page.locator('#hosts tbody tr[data-host]');
    await waitFor(async () => (await host.count()) === 1 && /cpu 3/.test((await host.locator('td').nth(5).textContent()) ?? ''), {
      what: 'the hosts table to show the quota of 3',
      timeoutMs: 10_000,
    });
    expect(await host.locator('td').nth(0).textContent()).toMatch(/plans$/);
    expect(await host.locator('td').nth(4).textContent()).toBe('cpu 3');
    expect(await page.evaluate(() => performance.getEntriesByType('navigation' as never).length)).toBe(before);
    await shot('dashboard-pinned');
  });

  it('follows a submitted run until it is done, and charts what the analyzer saw', async () => {
    const tasks = Array.from({ length: 12 }, (_, i) => ({ key: `step-${i}`, type: 'synthetic', name: `step ${i}`, config: { duration_ms: 150 } }));
    const run = (await coordinator.http.post('/runs').send({ name: 'browser-run', tasks }).expect(201)).body as { id: string };
    const row = page.locator(`#run-rows tr[data-run="${run.id}"]`);
    await waitFor(async () => (await row.count()) === 1, { what: 'the run in the runs table', timeoutMs: 10_000 });
    await waitFor(async () => (await row.getAttribute('data-state')) === 'passed', {
      what: 'the run to reach passed on the page',
      timeoutMs: 30_000,
    });
    await expect(row.locator('progress').getAttribute('value')).resolves.toBe('1');
    // One chart per series; the run time of the pool's tasks among them, drawn on a canvas with a size.
    const chart = page.locator('figure.chart[data-series="run_time_ms|pool=cpu"] canvas');
    await waitFor(async () => (await chart.count()) > 0, { what: 'the run-time chart', timeoutMs: 20_000 });
    const box = await chart.first().boundingBox();
    expect(box?.width).toBeGreaterThan(100);
    expect(box?.height).toBeGreaterThan(50);
    // A task of the run, looked up by id, shows its attempts and worker.
    const anyTask = page.locator('#task-rows a').first();
    await anyTask.click();
    await waitFor(async () => /attempts 1\/\d+ · worker /.test((await page.locator('#task-detail').textContent()) ?? ''), {
      what: 'the task detail',
    });
    await shot('dashboard-run');
  });
});
