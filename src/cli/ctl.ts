import { readFileSync, writeFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';

/**
 * `warren ctl`: manages a running broker over its management HTTP API, in the spirit of
 * rabbitmqctl. It speaks RabbitMQ's API, so it works against RabbitMQ too.
 *
 * Exit codes (rabbitmqctl's, from sysexits.h):
 *   0  success
 *   64 usage: unknown subcommand, missing or bad argument
 *   65 data: the broker refused the request (400: bad input; 404: no such object)
 *   69 unavailable: the management API cannot be reached (broker not running, wrong URL)
 *   70 software: an unexpected answer from the broker
 *   77 no permission: credentials refused (401)
 */
export const CTL_EXIT = { OK: 0, USAGE: 64, DATA: 65, UNAVAILABLE: 69, SOFTWARE: 70, NOPERM: 77 } as const;

export interface CtlIo {
  readonly stdout: { write(chunk: string): unknown };
  readonly stderr: { write(chunk: string): unknown };
  /** fetch, replaceable in tests */
  readonly fetch?: typeof fetch;
  readonly readFile?: (path: string) => string;
  readonly writeFile?: (path: string, text: string) => void;
}

/** A failure with its exit code; the message is printed on one line. */
class CtlError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

interface GlobalOptions {
  managementUrl: string;
  user?: string;
  password?: string;
  vhost: string;
  json?: boolean;
}

type Json = Record<string, unknown>;

/** What `list` shows per kind: API path and table columns (dotted paths). */
const LISTS: Record<string, { path: (vhost: string) => string; columns: string[]; perVhost: boolean }> = {
  queues: { path: (v) => `/queues/${enc(v)}`, columns: ['name', 'messages', 'messages_ready', 'messages_unacknowledged', 'consumers'], perVhost: true },
  exchanges: { path: (v) => `/exchanges/${enc(v)}`, columns: ['name', 'type', 'durable', 'auto_delete'], perVhost: true },
  bindings: { path: (v) => `/bindings/${enc(v)}`, columns: ['source', 'destination', 'destination_type', 'routing_key'], perVhost: true },
  connections: { path: () => '/connections', columns: ['name', 'user', 'vhost', 'state', 'channels'], perVhost: false },
  channels: { path: () => '/channels', columns: ['name', 'user', 'vhost', 'consumer_count', 'messages_unacknowledged'], perVhost: false },
  consumers: { path: (v) => `/consumers/${enc(v)}`, columns: ['queue.name', 'consumer_tag', 'ack_required', 'prefetch_count', 'channel_details.name'], perVhost: true },
  users: { path: () => '/users', columns: ['name', 'tags'], perVhost: false },
  vhosts: { path: () => '/vhosts', columns: ['name', 'messages'], perVhost: false },
  permissions: { path: (v) => `/vhosts/${enc(v)}/permissions`, columns: ['user', 'configure', 'write', 'read'], perVhost: true },
  policies: { path: (v) => `/policies/${enc(v)}`, columns: ['name', 'pattern', 'apply-to', 'definition', 'priority'], perVhost: true },
};

function enc(s: string): string {
  return encodeURIComponent(s);
}

/** Runs `warren ctl <argv>`; resolves with the exit code. */
export async function runCtl(argv: readonly string[], env: NodeJS.ProcessEnv, io: CtlIo): Promise<number> {
  const out = (s: string) => io.stdout.write(s);
  const program = new Command('warren ctl')
    .description('Manage a running Warren (or RabbitMQ) over its management HTTP API.')
    .addOption(new Option('--management-url <url>', 'management API base URL (credentials may be in it)').env('WARREN_MANAGEMENT_URL').default('http://localhost:15672'))
    .addOption(new Option('-u, --user <name>', 'user name (default: from the URL, else guest)').env('WARREN_CTL_USER'))
    .addOption(new Option('--password <password>', 'password (default: from the URL, else guest)').env('WARREN_CTL_PASSWORD'))
    .option('-p, --vhost <vhost>', 'virtual host', '/')
    .option('--json', 'print JSON instead of a table')
    .exitOverride()
    .showHelpAfterError(false)
    .configureOutput({
      writeOut: out,
      writeErr: (s) => io.stderr.write(s),
      outputError: (s, write) => write(`warren ctl: ${s.replace(/^error: /, '')}`),
    })
    .addHelpText(
      'after',
      `
Exit codes: 0 ok, 64 bad usage, 65 refused by the broker (bad input, no such object),
69 management API unreachable, 70 unexpected answer, 77 credentials refused.`,
    );

  const client = () => new Client(program.opts<GlobalOptions>(), io.fetch ?? fetch);
  const action =
    <A extends unknown[]>(fn: (...args: A) => Promise<void>) =>
    async (...args: A) => {
      await fn(...args);
    };

  program
    .command('status')
    .description('broker version, node, object counts and message totals')
    .action(
      action(async () => {
        const c = client();
        const o = await c.get('/overview');
        if (program.opts<GlobalOptions>().json) return void out(`${JSON.stringify(o, null, 2)}\n`);
        const totals = (o.object_totals ?? {}) as Json;
        const q = (o.queue_totals ?? {}) as Json;
        const ms = (o.message_stats ?? {}) as Json;
        const rate = (k: string) => Number(((ms[`${k}_details`] as Json | undefined)?.rate as number | undefined) ?? 0).toFixed(1);
        out(
          table(
            ['key', 'value'],
            [
              ['product', `${String(o.product_name ?? 'RabbitMQ')} ${String(o.product_version ?? o.rabbitmq_version ?? '')}`],
              ['node', String(o.node ?? '')],
              ['connections', String(totals.connections ?? 0)],
              ['channels', String(totals.channels ?? 0)],
              ['queues', String(totals.queues ?? 0)],
              ['consumers', String(totals.consumers ?? 0)],
              ['messages', String(q.messages ?? 0)],
              ['messages_ready', String(q.messages_ready ?? 0)],
              ['messages_unacknowledged', String(q.messages_unacknowledged ?? 0)],
              ['publish rate', `${rate('publish')}/s`],
              ['deliver rate', `${rate('deliver_get')}/s`],
            ],
          ),
        );
      }),
    );

  program
    .command('list')
    .description(`list objects as a table (or --json): ${Object.keys(LISTS).join('|')}`)
    .argument('<kind>', Object.keys(LISTS).join('|'))
    .action(
      action(async (kind: string) => {
        const spec = LISTS[kind];
        if (spec === undefined) throw new CtlError(`unknown kind '${kind}': expected one of ${Object.keys(LISTS).join(', ')}`, CTL_EXIT.USAGE);
        const opts = program.opts<GlobalOptions>();
        const items = (await client().get(spec.path(opts.vhost))) as unknown as Json[];
        if (opts.json) return void out(`${JSON.stringify(items, null, 2)}\n`);
        out(table(spec.columns, items.map((i) => spec.columns.map((c) => cell(pick(i, c))))));
      }),
    );

  program
    .command('add_user')
    .description('create a user')
    .argument('<name>')
    .argument('<password>')
    .option('--tags <tags>', 'comma-separated tags (administrator, monitoring, management, policymaker)', '')
    .action(action(async (name: string, password: string, o: { tags: string }) => {
      await client().put(`/users/${enc(name)}`, { password, tags: o.tags });
    }));
  program
    .command('delete_user')
    .argument('<name>')
    .action(action(async (name: string) => client().del(`/users/${enc(name)}`)));
  program
    .command('change_password')
    .argument('<name>')
    .argument('<password>')
    .action(action(async (name: string, password: string) => {
      const c = client();
      const user = await c.get(`/users/${enc(name)}`);
      await c.put(`/users/${enc(name)}`, { password, tags: tagsOf(user) });
    }));
  program
    .command('set_user_tags')
    .argument('<name>')
    .argument('[tags...]')
    .action(action(async (name: string, tags: string[]) => {
      const c = client();
      const user = await c.get(`/users/${enc(name)}`);
      const body: Json = { tags: tags.join(',') };
      if (typeof user.password_hash === 'string') {
        body.password_hash = user.password_hash;
        if (typeof user.hashing_algorithm === 'string') body.hashing_algorithm = user.hashing_algorithm;
      }
      await c.put(`/users/${enc(name)}`, body);
    }));
  program
    .command('set_permissions')
    .description('grant a user configure/write/read regular expressions on the vhost (-p)')
    .argument('<user>')
    .argument('<configure>')
    .argument('<write>')
    .argument('<read>')
    .action(action(async (user: string, configure: string, write: string, read: string) => {
      await client().put(`/permissions/${enc(program.opts<GlobalOptions>().vhost)}/${enc(user)}`, { configure, write, read });
    }));
  program
    .command('add_vhost')
    .argument('<name>')
    .action(action(async (name: string) => client().put(`/vhosts/${enc(name)}`, {})));
  program
    .command('delete_vhost')
    .argument('<name>')
    .action(action(async (name: string) => client().del(`/vhosts/${enc(name)}`)));
  program
    .command('set_policy')
    .description('set a policy on the vhost (-p): name, name pattern (regex), definition (JSON)')
    .argument('<name>')
    .argument('<pattern>')
    .argument('<definition>', 'JSON object, e.g. \'{"message-ttl":60000,"dead-letter-exchange":"dlx"}\'')
    .option('--priority <n>', 'priority (the highest matching policy applies)', '0')
    .addOption(new Option('--apply-to <what>', 'what the policy applies to').choices(['queues', 'exchanges', 'all']).default('all'))
    .action(action(async (name: string, pattern: string, definition: string, o: { priority: string; applyTo: string }) => {
      let def: unknown;
      try {
        def = JSON.parse(definition);
      } catch {
        throw new CtlError(`the policy definition is not JSON: ${definition}`, CTL_EXIT.USAGE);
      }
      if (def === null || typeof def !== 'object' || Array.isArray(def)) throw new CtlError('the policy definition must be a JSON object', CTL_EXIT.USAGE);
      if (!/^-?[0-9]+$/.test(o.priority)) throw new CtlError(`--priority must be an integer, got '${o.priority}'`, CTL_EXIT.USAGE);
      await client().put(`/policies/${enc(program.opts<GlobalOptions>().vhost)}/${enc(name)}`, {
        pattern,
        definition: def,
        priority: Number(o.priority),
        'apply-to': o.applyTo,
      });
    }));
  program
    .command('clear_policy')
    .argument('<name>')
    .action(action(async (name: string) => client().del(`/policies/${enc(program.opts<GlobalOptions>().vhost)}/${enc(name)}`)));
  program
    .command('purge_queue')
    .argument('<queue>')
    .action(action(async (queue: string) => client().del(`/queues/${enc(program.opts<GlobalOptions>().vhost)}/${enc(queue)}/contents`)));
  program
    .command('delete_queue')
    .argument('<queue>')
    .action(action(async (queue: string) => client().del(`/queues/${enc(program.opts<GlobalOptions>().vhost)}/${enc(queue)}`)));
  program
    .command('close_connection')
    .description("close a connection by name (as 'list connections' shows it)")
    .argument('<name>')
    .argument('[reason]', 'reason sent to the client', 'Closed via warren ctl')
    .action(action(async (name: string, reason: string) => client().del(`/connections/${enc(name)}`, { 'x-reason': reason })));
  program
    .command('export_definitions')
    .description("write the broker's definitions (RabbitMQ's format) to FILE ('-' for stdout)")
    .argument('<file>')
    .action(action(async (file: string) => {
      const defs = await client().get('/definitions');
      const text = `${JSON.stringify(defs, null, 2)}\n`;
      if (file === '-') out(text);
      else (io.writeFile ?? ((p, t) => writeFileSync(p, t)))(file, text);
    }));
  program
    .command('import_definitions')
    .description('load definitions (RabbitMQ\'s format) from FILE')
    .argument('<file>')
    .action(action(async (file: string) => {
      let text: string;
      try {
        text = (io.readFile ?? ((p) => readFileSync(p, 'utf8')))(file);
      } catch (err) {
        throw new CtlError(`cannot read ${file}: ${(err as Error).message}`, CTL_EXIT.USAGE);
      }
      let defs: unknown;
      try {
        defs = JSON.parse(text);
      } catch {
        throw new CtlError(`${file} is not JSON`, CTL_EXIT.DATA);
      }
      await client().post('/definitions', defs);
    }));

  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version') return CTL_EXIT.OK;
      return CTL_EXIT.USAGE;
    }
    if (err instanceof CtlError) {
      io.stderr.write(`warren ctl: ${err.message}\n`);
      return err.exitCode;
    }
    io.stderr.write(`warren ctl: ${(err as Error).message}\n`);
    return CTL_EXIT.SOFTWARE;
  }
  void env; // commander reads the WARREN_* variables from process.env
  return CTL_EXIT.OK;
}

function tagsOf(user: Json): string {
  const t = user.tags;
  return Array.isArray(t) ? t.join(',') : typeof t === 'string' ? t : '';
}

/** HTTP to the management API with one-line errors. */
class Client {
  private readonly base: string;
  private readonly auth: string;

  constructor(
    opts: GlobalOptions,
    private readonly fetchFn: typeof fetch,
  ) {
    let url: URL;
    try {
      url = new URL(opts.managementUrl);
    } catch {
      throw new CtlError(`invalid --management-url '${opts.managementUrl}'`, CTL_EXIT.USAGE);
    }
    const user = opts.user ?? (url.username !== '' ? decodeURIComponent(url.username) : 'guest');
    const password = opts.password ?? (url.password !== '' ? decodeURIComponent(url.password) : 'guest');
    url.username = '';
    url.password = '';
    this.base = `${url.origin}${url.pathname.replace(/\/+$/, '')}/api`;
    this.auth = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  }

  get(path: string): Promise<Json> {
    return this.request('GET', path);
  }
  async put(path: string, body: unknown): Promise<void> {
    await this.request('PUT', path, body);
  }
  async post(path: string, body: unknown): Promise<void> {
    await this.request('POST', path, body);
  }
  async del(path: string, headers: Record<string, string> = {}): Promise<void> {
    await this.request('DELETE', path, undefined, headers);
  }

  private async request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Json> {
    let res: Response;
    try {
      res = await this.fetchFn(`${this.base}${path}`, {
        method,
        headers: { authorization: this.auth, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code === 'ECONNREFUSED' ? 'connection refused' : (cause?.message ?? (err as Error).message);
      throw new CtlError(
        `cannot reach the management API at ${this.base.replace(/\/api$/, '')}: ${why} (is the broker running with its management port on?)`,
        CTL_EXIT.UNAVAILABLE,
      );
    }
    const text = await res.text();
    let parsed: unknown = null;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      parsed = null;
    }
    if (res.status === 401) {
      throw new CtlError('credentials refused by the broker (check --user/--password or the URL)', CTL_EXIT.NOPERM);
    }
    if (res.status === 404) throw new CtlError(`not found: ${method} ${path}`, CTL_EXIT.DATA);
    if (res.status >= 400) {
      const reason = (parsed as Json | null)?.reason ?? text;
      throw new CtlError(`the broker refused ${method} ${path}: ${typeof reason === 'string' ? reason : JSON.stringify(reason)}`, res.status < 500 ? CTL_EXIT.DATA : CTL_EXIT.SOFTWARE);
    }
    return (parsed ?? {}) as Json;
  }
}

function pick(item: unknown, path: string): unknown {
  let v: unknown = item;
  for (const k of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Json)[k];
  }
  return v;
}

function cell(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (Array.isArray(v)) return v.join(',');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** A plain text table, columns padded to their widest cell. */
export function table(columns: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = columns.map((c, i) => Math.max(c.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(columns), ...rows.map(line)].join('\n') + '\n';
}
