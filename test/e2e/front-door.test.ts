import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { hasTool } from '../fixtures/system-tools.js';
import { launchChromium, type TestBrowser } from '../fixtures/browser.js';
import { startTestServer, type TestServer } from '../fixtures/test-server.js';

const haveChromium = hasTool('chromium', 'chromium');
const PAGES = ['meet', 'signal', 'call', 'stream'];
const BANNER = 'Websocket streaming server - Version 1.0.0';
const version = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

/** Every JSON line the server logs, at info and above. */
const lines: Array<Record<string, unknown>> = [];
let t: TestServer;

beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n'))
        if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  t = await startTestServer({}, { logger: pino({ level: 'info' }, sink) });
}, 60_000);
afterAll(async () => {
  await t?.close();
});

describe('the front door', () => {
  it("keeps the Stream seed's banner at / for clients that do not ask for HTML", async () => {
    for (const headers of [{}, { accept: '*/*' }, { accept: 'application/json' }]) {
      const res = await fetch(`${t.url}/`, { headers });
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(BANNER);
    }
  });

  it('gives a browser a landing page: every page and doc (all reachable), the version and the health', async () => {
    const res = await fetch(`${t.url}/`, { headers: { accept: BROWSER_ACCEPT } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toContain(`version ${version}`);
    expect(html).toMatch(/id="health">ready</);
    const links = [...html.matchAll(/href="(\/[^"]*)"/g)].map((m) => m[1]!);
    for (const p of PAGES) expect(links).toContain(`/${p}/`);
    for (const d of ['/docs/README.md', '/docs/signal.md', '/docs/secure-context.md'])
      expect(links).toContain(d);
    for (const link of links) {
      const page = await fetch(`${t.url}${link}`);
      expect({ link, status: page.status }).toEqual({ link, status: 200 });
    }
  });

  it('prints the URLs of the pages once it listens, and they open', async () => {
    const listening = lines.filter((l) => l.msg === 'chorus listening');
    expect(listening).toHaveLength(1);
    expect(listening[0]!.frontDoor).toBe(`${t.url}/`);
    const pages = listening[0]!.pages as Record<string, string>;
    expect(Object.keys(pages).sort()).toEqual([...PAGES].sort());
    for (const url of Object.values(pages)) expect((await fetch(url)).status).toBe(200);
  });
});

describe('the front door without the Stream surface', () => {
  it('serves the landing page at / to every client, listing only the pages that are on', async () => {
    const s = await startTestServer({ stream: { enabled: false }, voip: { enabled: false } });
    try {
      const res = await fetch(`${s.url}/`);
      expect(res.status).toBe(200);
      const html = await res.text();
      expect(html).toContain('href="/meet/"');
      expect(html).toContain('href="/signal/"');
      expect(html).not.toContain('href="/stream/"');
      expect(html).not.toContain('href="/call/"');
      expect((await fetch(`${s.url}/call/`)).status).toBe(404);
    } finally {
      await s.close();
    }
  });
});

describe.runIf(haveChromium)('the pages in Chromium', () => {
  let chromium: TestBrowser | undefined;
  let browser: Browser;
  beforeAll(async () => {
    // chorus.test is this machine under a name: plain HTTP to it is not a secure context.
    chromium = await launchChromium(['--host-resolver-rules=MAP chorus.test 127.0.0.1']);
    browser = chromium.browser;
  }, 60_000);
  afterAll(async () => {
    await chromium?.close();
  });

  it('opens the landing page and every page with no console error and no failed request (favicon included)', async () => {
    const page = await (await browser.newContext()).newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    page.on('response', (r) => {
      if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`);
    });
    const favicons: number[] = [];
    page.on('response', (r) => {
      if (r.url().includes('/favicon')) favicons.push(r.status());
    });
    await page.goto(`${t.url}/`);
    expect(await page.textContent('h1')).toBe('Chorus');
    for (const p of PAGES) {
      await page.click(`a[href="/${p}/"]`);
      await page.waitForURL(`${t.url}/${p}/`);
      await page.waitForLoadState('networkidle');
      expect(await page.locator('#insecure-context').count()).toBe(0);
      await page.goto(`${t.url}/`);
    }
    expect(problems).toEqual([]);
    expect(favicons.length).toBeGreaterThan(0);
    expect(favicons.every((s) => s === 200)).toBe(true);
  }, 60_000);

  it('says plainly on every page, opened over plain HTTP by a name, that it needs HTTPS or localhost, linking the docs', async () => {
    const port = new URL(t.url).port;
    const page = await (await browser.newContext()).newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    for (const p of PAGES) {
      await page.goto(`http://chorus.test:${port}/${p}/`);
      expect(await page.evaluate(() => window.isSecureContext)).toBe(false);
      const box = page.locator('#insecure-context');
      await box.waitFor({ state: 'visible', timeout: 10_000 });
      expect(await box.textContent()).toMatch(/HTTPS.*localhost/s);
      const href = await box.locator('a').getAttribute('href');
      expect(href).toBe('/docs/secure-context.md');
      const doc = await fetch(`${t.url}${href}`);
      expect(doc.status).toBe(200);
      expect(await doc.text()).toContain('SSL_CERT');
    }
    expect(pageErrors).toEqual([]);
  }, 60_000);
});
