import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config/schema.js';
import { chorusVersion } from '../lib/chorus-version.js';
import type { Readiness } from './readiness.js';
import { webPages, type WebPage } from './web-pages.js';

/** The repository's docs/ (and README.md next to it), served read-only as plain text. */
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/** A small round "C" in the pages' accent colour: the same icon for every page. */
const FAVICON =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64">' +
  '<circle cx="32" cy="32" r="30" fill="#4f8cff"/>' +
  '<path d="M43 22a14 14 0 1 0 0 20" fill="none" stroke="#fff" stroke-width="7" stroke-linecap="round"/></svg>';

export interface FrontDoorOptions {
  config: Config;
  readiness: Readiness;
}

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A browser navigating (Accept names text/html), not curl or a seed client (`*\/*` or none). */
function wantsHtml(request: FastifyRequest): boolean {
  const accept = request.headers.accept;
  return typeof accept === 'string' && accept.includes('text/html');
}

/** docs/*.md and README.md, by the path they are served under. */
function findDocs(): Map<string, string> {
  const docs = new Map<string, string>();
  const readme = `${repoRoot}README.md`;
  if (existsSync(readme)) docs.set('/docs/README.md', readme);
  const dir = `${repoRoot}docs/`;
  if (existsSync(dir)) {
    for (const f of readdirSync(dir)) if (/^[a-z0-9-]+\.md$/.test(f)) docs.set(`/docs/${f}`, dir + f);
  }
  return docs;
}

function landingPage(pages: readonly WebPage[], docs: readonly string[], readiness: Readiness): string {
  const health = readiness.snapshot();
  const down = Object.entries(health.components)
    .filter(([, up]) => !up)
    .map(([name]) => name);
  const pageRows = pages
    .map(
      (p) =>
        `<li><a href="/${p.name}/">${escapeHtml(p.title)}</a> <code>/${p.name}/</code><br /><span class="muted">${escapeHtml(p.what)}</span></li>`,
    )
    .join('\n');
  const docRows = docs
    .map((d) => `<li><a href="${d}">${escapeHtml(d.slice('/docs/'.length))}</a></li>`)
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8" />
<meta name="viewport" content="width=device-width, initial-scale=1" />
<title>Chorus</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml" />
<link rel="stylesheet" href="/shared/style.css" />
</head>
<body>
<header><h1>Chorus</h1><span class="status" id="version">version ${escapeHtml(chorusVersion())}</span>
<span class="status" id="health">${health.ready ? 'ready' : `not ready: ${escapeHtml(down.join(', ') || 'starting')}`}</span></header>
<main>
<section class="card">
<p>A real-time media server: video conferences, calls and live streams, speaking the APIs of
five existing systems (Signal Server, ws-stream-server, gostream, Beep, Blue Sky) plus its own.</p>
</section>
<section class="card"><h2>Pages</h2>
${pages.length > 0 ? `<ul id="pages">\n${pageRows}\n</ul>` : '<p>No pages: every surface with a page is turned off (or <code>WEB_ENABLED=NO</code>).</p>'}
<p class="muted">Camera and microphone need a secure context: open the pages on this machine
(<code>localhost</code>, <code>127.0.0.1</code>) or over HTTPS.</p>
</section>
${docs.length > 0 ? `<section class="card"><h2>Docs</h2>\n<ul id="docs">\n${docRows}\n</ul></section>` : ''}
<section class="card"><h2>Operations</h2>
<ul><li><a href="/healthz">/healthz</a></li><li><a href="/readyz">/readyz</a></li><li><a href="/metrics">/metrics</a></li></ul>
</section>
</main>
</body>
</html>
`;
}

/**
 * The front door: `/` gives browsers a landing page (the pages, the docs, version and
 * health) while other clients keep the Stream seed's banner there; a favicon for every
 * page; the docs as plain text. Mounted before the surfaces, so its hook sees `/` first.
 */
export function mountFrontDoor(app: FastifyInstance, opts: FrontDoorOptions): void {
  const { config, readiness } = opts;
  if (!config.web.enabled) return;
  const pages = webPages(config);
  const docs = findDocs();
  const sendLanding = (reply: FastifyReply): FastifyReply =>
    reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(landingPage(pages, [...docs.keys()], readiness));

  const bannerAtRoot = config.stream.enabled && config.stream.prefix === '';
  if (bannerAtRoot) {
    // The Stream surface owns `GET /` (its banner); a browser asking for HTML is answered here first.
    app.addHook('onRequest', async (request, reply) => {
      if (
        (request.method === 'GET' || request.method === 'HEAD') &&
        request.url.split('?')[0] === '/' &&
        wantsHtml(request)
      ) {
        return sendLanding(reply);
      }
      return undefined;
    });
  } else {
    app.get('/', async (_request, reply) => sendLanding(reply));
  }

  for (const path of ['/favicon.ico', '/favicon.svg']) {
    app.get(path, async (_request, reply) =>
      reply.type('image/svg+xml').header('cache-control', 'public, max-age=86400').send(FAVICON),
    );
  }
  for (const [path, file] of docs) {
    app.get(path, async (_request, reply) =>
      reply.type('text/plain; charset=utf-8').send(readFileSync(file, 'utf8')),
    );
  }
}
