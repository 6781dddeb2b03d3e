import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type ChannelModel } from 'amqplib';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// evaluated in the page: the browser's document
declare global {
  // eslint-disable-next-line no-var
  var document: { querySelector(sel: string): { textContent: string | null } | null };
}
import { startHttpBroker, type HttpBroker } from '../management/helpers.js';

/** Debian's chromium (.ci/run installs it), driven headless by playwright-core. */
const CHROMIUM = '/usr/bin/chromium';
/** Screenshots are kept here after the run (git-ignored). */
const OUTPUT = join(process.cwd(), 'test-output');
/** The page refreshes on its own tick; on a loaded machine that takes longer than expect.poll's default second. */
const poll = <T>(fn: () => T | Promise<T>) => expect.poll(fn, { timeout: 15_000 });

describe('dashboard in headless Chromium', () => {
  let h: HttpBroker;
  let browser: Browser;
  let conn: ChannelModel;

  beforeAll(async () => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`).toBe(true);
    mkdirSync(OUTPUT, { recursive: true });
    h = await startHttpBroker({ statsInterval: 200 });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    conn = await connect(h.broker.url);
  }, 60_000);
  afterAll(async () => {
    await conn?.close().catch(() => {});
    await browser?.close();
    await h?.close();
  });

  it('logs in, shows a queue filling up and the publish rate chart moving, and closes a connection', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const elsewhere: string[] = [];
    const errors: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(h.base) && !r.url().startsWith('data:')) elsewhere.push(r.url());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    try {
      await page.goto(`${h.base}/`);
      // a wrong password is refused on the page
      await page.fill('input[name=username]', 'guest');
      await page.fill('input[name=password]', 'wrong');
      await page.click('button[type=submit]');
      await poll(() => page.textContent('#login-error')).toBe('Login failed');
      await page.fill('input[name=password]', 'guest');
      await page.click('button[type=submit]');
      await page.waitForSelector('#overview:not([hidden])');
      expect(await page.textContent('#user')).toBe('guest (administrator)');

      // declare a queue and publish to it from the page
      page.on('dialog', (d) => void d.accept());
      await page.click('a[href="#queues"]');
      const declare = page.locator('form[data-op="declare-queue"]');
      await declare.locator('input[name="name"]').fill('dashboard-q');
      await declare.locator('select[name="durable"]').selectOption('false');
      await declare.locator('button[type="submit"]').click();
      const row = page.locator('#queues-table tbody tr[data-name="dashboard-q"]');
      await row.waitFor();
      await row.click();
      await page.waitForSelector('#queue-detail:not([hidden])');
      const publishForm = page.locator('form[data-op="publish-to-queue"]');
      for (let i = 0; i < 3; i++) {
        await publishForm.locator('textarea[name="payload"]').fill(`from the page ${i}`);
        await publishForm.locator('button[type="submit"]').click();
        // the action's own result line (the refresh tick writes to #status, not here)
        await expect.poll(() => page.textContent('#action-status'), { timeout: 15_000 }).toContain('routed: true');
        await page.evaluate(() => (globalThis.document.querySelector('#action-status') as unknown as { textContent: string }).textContent = '');
      }
      const ready = async () => Number((await row.locator('td.messages-ready').textContent())!.replace(/,/g, ''));
      await expect.poll(ready, { timeout: 15_000 }).toBe(3);
      // the browser shows them in order, and a get (ack) takes the first
      await expect.poll(() => page.locator('#queue-browse tbody tr').count(), { timeout: 15_000 }).toBe(3);
      expect(await page.locator('#queue-browse tbody tr').first().locator('td').nth(4).textContent()).toBe('from the page 0');
      const getForm = page.locator('form[data-op="get"]');
      await getForm.locator('select[name="ackmode"]').selectOption('ack_requeue_false');
      await getForm.locator('button[type="submit"]').click();
      await poll(() => page.textContent('#queue-got')).toContain('from the page 0');
      await expect.poll(ready, { timeout: 15_000 }).toBe(2);
      await page.screenshot({ path: join(OUTPUT, 'dashboard-queue-forms.png'), fullPage: true });

      // a client publishes while we watch the overview
      await page.click('a[href="#overview"]');
      const ch = await conn.createChannel();
      await ch.assertQueue('dashboard-q', { durable: false });
      const pump = setInterval(() => {
        for (let i = 0; i < 20; i++) ch.sendToQueue('dashboard-q', Buffer.from('x'));
      }, 20);
      try {
        await page.waitForFunction(() => Number(globalThis.document.querySelector('#r-publish')!.textContent!.replace(/,/g, '')) > 0, null, { timeout: 15_000 });
        await page.waitForFunction(() => Number(globalThis.document.querySelector('#t-ready')!.textContent!.replace(/,/g, '')) > 0, null, { timeout: 15_000 });
        expect(Number(await page.getAttribute('#rates-chart', 'data-points'))).toBeGreaterThan(1);
        expect(await page.locator('#rates-chart canvas').count()).toBe(1);
        await page.screenshot({ path: join(OUTPUT, 'dashboard-overview.png') });

        await page.click('a[href="#queues"]');
        await row.waitFor();
        const first = await ready();
        await expect.poll(ready, { timeout: 15_000 }).toBeGreaterThan(first);
        await page.screenshot({ path: join(OUTPUT, 'dashboard-queues.png'), fullPage: true });
      } finally {
        clearInterval(pump);
      }

      // users, vhosts and policies from the admin view
      await page.click('a[href="#admin"]');
      const vhostForm = page.locator('form[data-op="add-vhost"]');
      await vhostForm.locator('input[name="name"]').fill('from-the-page');
      await vhostForm.locator('button[type="submit"]').click();
      await poll(() => page.locator('#vhosts-table tbody tr').allTextContents()).toContainEqual(expect.stringContaining('from-the-page'));
      const userForm = page.locator('form[data-op="add-user"]');
      await userForm.locator('input[name="name"]').fill('page-user');
      await userForm.locator('input[name="password"]').fill('pw');
      await userForm.locator('input[name="tags"]').fill('monitoring');
      await userForm.locator('button[type="submit"]').click();
      await poll(() => page.locator('#users-table tbody tr').allTextContents()).toContainEqual(expect.stringContaining('page-user'));
      const policyForm = page.locator('form[data-op="set-policy"]');
      await policyForm.locator('input[name="name"]').fill('page-ttl');
      await policyForm.locator('input[name="pattern"]').fill('^dashboard-');
      await policyForm.locator('input[name="definition"]').fill('{"message-ttl":600000}');
      await policyForm.locator('button[type="submit"]').click();
      await poll(() => page.locator('#policies-table tbody tr').allTextContents()).toContainEqual(expect.stringContaining('page-ttl'));
      expect((await h.api('/queues/%2F/dashboard-q')).body.policy).toBe('page-ttl');
      await page.screenshot({ path: join(OUTPUT, 'dashboard-admin.png'), fullPage: true });

      // close the publishing connection from the connections view
      const closed = new Promise<Error & { code?: number }>((resolve) => conn.on('close', resolve));
      conn.on('error', () => {});
      await page.click('a[href="#connections"]');
      await page.locator('#connections-table tbody tr button').first().click();
      expect((await closed).message).toContain('CONNECTION_FORCED');
      await poll(() => page.locator('#connections-table tbody tr').count()).toBe(0);
      await page.screenshot({ path: join(OUTPUT, 'dashboard-connections.png') });
    } finally {
      await page.close();
    }
    expect(elsewhere).toEqual([]);
    expect(errors).toEqual([]);
    // eslint-disable-next-line no-console
    console.log(`dashboard screenshots: ${OUTPUT}/dashboard-*.png`);
  }, 60_000);

  it('serves the page and its assets with content types and cache headers', async () => {
    const index = await fetch(`${h.base}/`);
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(index.headers.get('cache-control')).toBe('no-cache');
    expect(index.headers.get('content-security-policy')).toContain("default-src 'self'");
    const html = await index.text();
    const etag = index.headers.get('etag')!;
    expect((await fetch(`${h.base}/`, { headers: { 'if-none-match': etag } })).status).toBe(304);
    const assets = [...html.matchAll(/(?:src|href)="(static\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets).toHaveLength(4);
    for (const a of assets) {
      const res = await fetch(`${h.base}/${a}`);
      expect([a, res.status]).toEqual([a, 200]);
      expect(res.headers.get('content-type')).toMatch(a.includes('.js') ? /^application\/javascript/ : /^text\/css/);
      expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(a).toMatch(/\?v=[^_]/);
    }
    expect((await fetch(`${h.base}/static/index.html`)).status).toBe(404);
  });
});
