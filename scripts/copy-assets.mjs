// Build step after tsc: the dashboard's static files go next to the compiled server, and
// uPlot is vendored from its npm package (so the runtime needs neither the dev
// dependency nor any network access).
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const www = join(root, 'dist', 'management', 'www');
cpSync(join(root, 'src', 'management', 'www'), www, { recursive: true });
const require = createRequire(import.meta.url);
const uplotDist = dirname(require.resolve('uplot/dist/uPlot.iife.min.js'));
const vendor = join(www, 'vendor');
mkdirSync(vendor, { recursive: true });
for (const f of ['uPlot.iife.min.js', 'uPlot.min.css']) cpSync(join(uplotDist, f), join(vendor, f));
const { version } = JSON.parse(readFileSync(join(uplotDist, '..', 'package.json'), 'utf8'));
writeFileSync(join(vendor, 'VERSION'), `${version}\n`);
cpSync(join(uplotDist, '..', 'LICENSE'), join(vendor, 'uPlot.LICENSE'));
