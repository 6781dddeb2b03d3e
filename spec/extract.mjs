#!/usr/bin/env node
// Turns the RabbitMQ-extended AMQP 0-9-1 XML (Debian `amqp-specs`) into
// spec/amqp-0-9-1-rabbitmq.json, the single input of spec/codegen/generate.mjs.
//
//   node spec/extract.mjs [path/to/amqp0-9-1.stripped.extended.xml]
//
// No dependencies: the XML is a flat, machine-written file, so a tiny tag reader
// (elements, attributes, nesting) is enough. Output is deterministic (spec order,
// fixed key order, 2-space JSON, trailing newline).
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const DEFAULT_XML = '/usr/share/amqp/specs/0-9-1-rabbit/amqp0-9-1.stripped.extended.xml';
const here = dirname(fileURLToPath(import.meta.url));
const xmlPath = process.argv[2] ?? DEFAULT_XML;
const outPath = join(here, 'amqp-0-9-1-rabbitmq.json');

/**
 * RabbitMQ speaks a few things the Debian XML does not carry. They come from
 * rabbitmq-server deps/rabbitmq_codegen/amqp-rabbitmq-0.9.1.json (the file
 * RabbitMQ itself generates rabbit_framing_amqp_0_9_1.erl from) and are marked
 * `"source": "rabbitmq-codegen"` in the output so nobody mistakes them for XML.
 */
const EXTRA_CONSTANTS = [{ name: 'no-route', value: 312, class: 'soft-error' }];
const EXTRA_METHODS = {
  connection: [
    // RabbitMQ: connection.blocked / unblocked (capability "connection.blocked")
    { name: 'blocked', id: 60, synchronous: false, content: false, fields: [{ name: 'reason', domain: 'shortstr' }] },
    { name: 'unblocked', id: 61, synchronous: false, content: false, fields: [] },
    // RabbitMQ: connection.update-secret (OAuth token refresh)
    {
      name: 'update-secret', id: 70, synchronous: true, content: false,
      fields: [{ name: 'new-secret', domain: 'longstr' }, { name: 'reason', domain: 'shortstr' }],
    },
    { name: 'update-secret-ok', id: 71, synchronous: true, content: false, fields: [] },
  ],
};
/**
 * The XML names the 14th basic property "reserved" (it was cluster-id in 0-9 and
 * is deprecated); RabbitMQ's codegen JSON and every client call it cluster-id.
 */
const PROPERTY_RENAMES = { basic: { reserved: 'cluster-id' } };

// ---- a tiny XML reader -------------------------------------------------------
function parseXml(text) {
  text = text.replace(/<!--[\s\S]*?-->/g, '').replace(/<\?[\s\S]*?\?>/g, '');
  const root = { tag: '#root', attrs: {}, children: [] };
  const stack = [root];
  const tagRe = /<(\/?)([A-Za-z_][\w.-]*)((?:\s+[\w.-]+\s*=\s*"[^"]*")*)\s*(\/?)>/g;
  let m;
  while ((m = tagRe.exec(text)) !== null) {
    const [, closing, tag, attrText, selfClosing] = m;
    if (closing) {
      const top = stack.pop();
      if (!top || top.tag !== tag) throw new Error(`XML: unexpected </${tag}>`);
      continue;
    }
    const attrs = {};
    for (const a of attrText.matchAll(/([\w.-]+)\s*=\s*"([^"]*)"/g)) attrs[a[1]] = decodeEntities(a[2]);
    const node = { tag, attrs, children: [] };
    stack[stack.length - 1].children.push(node);
    if (!selfClosing) stack.push(node);
  }
  if (stack.length !== 1) throw new Error('XML: unclosed element');
  return root;
}
function decodeEntities(s) {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
}
const kids = (node, tag) => node.children.filter((c) => c.tag === tag);

// ---- extraction --------------------------------------------------------------
const doc = parseXml(readFileSync(xmlPath, 'utf8'));
const amqp = kids(doc, 'amqp')[0];
if (!amqp) throw new Error(`${xmlPath}: no <amqp> element`);

const constants = kids(amqp, 'constant').map((c) => {
  const out = { name: c.attrs.name, value: Number(c.attrs.value) };
  if (c.attrs.class) out.class = c.attrs.class;
  return out;
});
for (const extra of EXTRA_CONSTANTS) {
  if (!constants.some((c) => c.name === extra.name)) constants.push({ ...extra, source: 'rabbitmq-codegen' });
}

const domains = kids(amqp, 'domain').map((d) => ({ name: d.attrs.name, type: d.attrs.type }));
const domainType = new Map(domains.map((d) => [d.name, d.type]));
const PRIMITIVES = new Set(['bit', 'octet', 'short', 'long', 'longlong', 'shortstr', 'longstr', 'timestamp', 'table']);
function resolve(name, domain, type) {
  const t = type ?? domainType.get(domain);
  if (!t || !PRIMITIVES.has(t)) throw new Error(`field ${name}: cannot resolve domain=${domain} type=${type}`);
  return t;
}
function field(f) {
  const out = { name: f.attrs.name, type: resolve(f.attrs.name, f.attrs.domain, f.attrs.type) };
  if (f.attrs.domain) out.domain = f.attrs.domain;
  if (f.attrs.reserved === '1') out.reserved = true;
  return out;
}

const classes = kids(amqp, 'class').map((c) => {
  const renames = PROPERTY_RENAMES[c.attrs.name] ?? {};
  const properties = kids(c, 'field').map((f) => {
    const p = field(f);
    if (renames[p.name]) p.name = renames[p.name];
    return p;
  });
  const methods = kids(c, 'method').map((m) => {
    const out = {
      name: m.attrs.name,
      id: Number(m.attrs.index),
      synchronous: m.attrs.synchronous === '1',
      content: m.attrs.content === '1',
    };
    if (m.attrs.deprecated === '1') out.deprecated = true;
    const responses = kids(m, 'response').map((r) => r.attrs.name);
    if (responses.length) out.responses = responses;
    out.chassis = kids(m, 'chassis').map((ch) => ch.attrs.name).sort();
    out.fields = kids(m, 'field').map(field);
    return out;
  });
  for (const extra of EXTRA_METHODS[c.attrs.name] ?? []) {
    if (methods.some((m) => m.id === extra.id)) continue;
    methods.push({
      name: extra.name, id: extra.id, synchronous: extra.synchronous, content: extra.content,
      source: 'rabbitmq-codegen',
      fields: extra.fields.map((f) => ({ name: f.name, type: resolve(f.name, f.domain), domain: f.domain })),
    });
  }
  methods.sort((a, b) => a.id - b.id);
  return { name: c.attrs.name, id: Number(c.attrs.index), handler: c.attrs.handler, properties, methods };
});

const spec = {
  comment: 'Generated by spec/extract.mjs — see spec/README.md. Do not edit by hand.',
  source: 'Debian amqp-specs: 0-9-1-rabbit/amqp0-9-1.stripped.extended.xml, plus RabbitMQ extensions from rabbitmq-server deps/rabbitmq_codegen/amqp-rabbitmq-0.9.1.json',
  major: Number(amqp.attrs.major),
  minor: Number(amqp.attrs.minor),
  revision: Number(amqp.attrs.revision),
  port: Number(amqp.attrs.port),
  constants,
  domains,
  classes,
};
writeFileSync(outPath, JSON.stringify(spec, null, 2) + '\n');
console.log(`wrote ${outPath}: ${classes.length} classes, ${classes.reduce((n, c) => n + c.methods.length, 0)} methods`);
