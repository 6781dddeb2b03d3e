import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type RunningBroker } from '../../src/index.js';
import { requireInstalled, run, runsOk } from './installed.js';

// A basic session (qos, declare, confirm, publish, consume, ack, close) with each of the other
// clients from Debian, against Warren as it presents itself (product RabbitMQ 3.10.0): nothing in
// them keys on product or version in a way that breaks. Each also passes against RabbitMQ 3.10.

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));
const JAVA_CLASSPATH = ['/usr/share/java/amqp-client.jar', '/usr/share/java/slf4j-api.jar', '/usr/share/java/slf4j-nop.jar'].join(':');
const GO_ENV = { GOPATH: '/usr/share/gocode', GO111MODULE: 'off' };

interface ClientCase {
  name: string;
  debianPackages: string;
  installed: () => boolean;
  command: (url: string) => [string, string[], NodeJS.ProcessEnv?];
}

const clients: ClientCase[] = [
  {
    name: 'pika',
    debianPackages: 'python3-pika',
    installed: () => runsOk('/usr/bin/python3', ['-c', 'import pika']),
    command: (url) => ['/usr/bin/python3', [here('./pika_session.py'), url]],
  },
  {
    name: 'Go amqp091-go',
    debianPackages: 'golang-go golang-github-rabbitmq-amqp091-go-dev',
    installed: () => runsOk('go', ['version']) && runsOk('test', ['-d', '/usr/share/gocode/src/github.com/rabbitmq/amqp091-go']),
    command: (url) => ['go', ['run', here('./go/amqp091_session.go'), url], GO_ENV],
  },
  {
    name: 'RabbitMQ Java client',
    debianPackages: 'default-jdk-headless librabbitmq-client-java',
    installed: () => runsOk('javac', ['-version']) && runsOk('test', ['-f', '/usr/share/java/amqp-client.jar']),
    command: (url) => ['java', ['-cp', JAVA_CLASSPATH, here('./java/JavaClientSession.java'), url]],
  },
];

let broker: RunningBroker;
beforeAll(async () => {
  broker = await startBroker();
});
afterAll(() => broker.close());

describe('client sessions', () => {
  it.for(clients)('$name: a basic session works', { timeout: 120_000 }, async (client, ctx) => {
    requireInstalled(ctx, client.installed(), client.debianPackages);
    const [command, args, env] = client.command(broker.url);
    const r = await run(command, args, { env });
    const output = r.stdout + r.stderr;
    expect(output).toContain('product: RabbitMQ');
    expect(r.code, output).toBe(0);
    expect(output).toMatch(/^OK$/m);
  });
});
