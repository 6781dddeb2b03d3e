import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * The dashboard: static pages served from the management port (index.html, app.js,
 * app.css, and uPlot for the charts). Every request stays on this server: the page loads
 * nothing from elsewhere, and its Content-Security-Policy says so to the browser.
 *
 * Caching: index.html is revalidated on every load (no-cache + ETag); the scripts and
 * styles it names carry a version in their URL, so they may be cached for good.
 */

const WWW = fileURLToPath(new URL('./www/', import.meta.url));
const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'";
const IMMUTABLE = 'public, max-age=31536000, immutable';

/** uPlot: copied into www/vendor by the build (scripts/copy-assets.mjs); from node_modules when running from source. */
function vendorDir(): string {
  const built = `${WWW}vendor/`;
  if (existsSync(`${built}uPlot.iife.min.js`)) return built;
  return `${dirname(createRequire(import.meta.url).resolve('uplot/dist/uPlot.iife.min.js'))}/`;
}

function uplotVersion(dir: string): string {
  try {
    const pkg = JSON.parse(readFileSync(`${dir}../package.json`, 'utf8')) as { version?: string };
    if (pkg.version !== undefined) return pkg.version;
  } catch {
    // vendored copy: its version file
  }
  try {
    return readFileSync(`${dir}VERSION`, 'utf8').trim();
  } catch {
    return 'vendored';
  }
}

export function registerDashboard(app: FastifyInstance, version: string): void {
  const vendor = vendorDir();
  const html = readFileSync(`${WWW}index.html`, 'utf8')
    .replaceAll('__VERSION__', encodeURIComponent(version))
    .replaceAll('__UPLOT_VERSION__', encodeURIComponent(uplotVersion(vendor)));
  const etag = `"${createHash('sha256').update(html).digest('base64url').slice(0, 16)}"`;

  const sendIndex = async (req: FastifyRequest, reply: FastifyReply) => {
    void reply
      .header('cache-control', 'no-cache')
      .header('etag', etag)
      .header('content-security-policy', CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer');
    if (req.headers['if-none-match'] === etag) return reply.code(304).send();
    return reply.type('text/html; charset=utf-8').send(html);
  };
  app.get('/', sendIndex);
  app.get('/index.html', sendIndex);

  const headers = (reply: FastifyReply) => {
    void reply.header('cache-control', IMMUTABLE).header('x-content-type-options', 'nosniff');
  };
  void app.register(fastifyStatic, {
    root: WWW,
    prefix: '/static/',
    index: false,
    allowedPath: (path) => path === '/app.js' || path === '/app.css',
    cacheControl: false,
    etag: true,
    lastModified: true,
    setHeaders: headers,
  });
  void app.register(fastifyStatic, {
    root: vendor,
    prefix: '/static/vendor/',
    decorateReply: false,
    index: false,
    allowedPath: (path) => path === '/uPlot.iife.min.js' || path === '/uPlot.min.css',
    cacheControl: false,
    etag: true,
    lastModified: true,
    setHeaders: headers,
  });
}
