import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ArgReader,
  M,
  PROTOCOL_HEADER,
  PROTOCOL_HEADER_0_9,
  RawClient,
  args,
  basicPublishArgs,
  encodeBody,
  encodeContentHeader,
  encodeMethod,
  queueDeclareArgs,
} from '../../conformance/support/raw-client.js';
import { WARREN_VERSION } from '../../src/index.js';
import { fieldTableToJs } from '../../src/protocol/field-table.js';
import { MethodId } from '../../src/protocol/generated/constants.js';
import { decodeMethod } from '../../src/protocol/generated/methods.js';
import { IN_MEMORY_URL, startInMemoryBroker, type InMemoryBroker } from '../helpers/in-memory-broker.js';

// Connection behaviour over in-memory duplex pairs (no TCP): the handshake, channels, errors
// and closes, fast. The conformance suite covers the same ground over TCP against RabbitMQ too.

let warren: InMemoryBroker;
beforeAll(async () => {
  warren = await startInMemoryBroker();
});
afterAll(() => warren.close());

/** connection.start's arguments as the broker sent them, decoded with our own codec. */
function startArgs(c: RawClient): { versionMajor: number; versionMinor: number; serverProperties: Record<string, unknown>; mechanisms: string } {
  const m = c.connectionStart!;
  const payload = Buffer.alloc(4 + m.args.length);
  payload.writeUInt16BE(m.classId, 0);
  payload.writeUInt16BE(m.methodId, 2);
  m.args.copy(payload, 4);
  const method = decodeMethod(payload);
  if (method.id !== MethodId.ConnectionStart) throw new Error(`expected connection.start, got ${method.id}`);
  const a = method.args;
  return {
    versionMajor: a.versionMajor,
    versionMinor: a.versionMinor,
    serverProperties: fieldTableToJs(a.serverProperties),
    mechanisms: a.mechanisms.toString(),
  };
}

async function declareServerNamed(c: RawClient, channel = 1): Promise<string> {
  c.sendMethod(channel, M.QueueDeclare, queueDeclareArgs('', { exclusive: true }));
  return new ArgReader((await c.expectMethod(M.QueueDeclareOk)).args).shortstr();
}

describe('Connection over an in-memory duplex pair', () => {
  it('handshake: connection.start offers 0-9, PLAIN and AMQPLAIN and the capabilities; tune and open follow', async () => {
    const c = await warren.open();
    const start = startArgs(c);
    expect([start.versionMajor, start.versionMinor]).toEqual([0, 9]);
    expect(start.mechanisms.split(' ')).toEqual(expect.arrayContaining(['PLAIN', 'AMQPLAIN']));
    expect(start.serverProperties.capabilities).toMatchObject({ publisher_confirms: true, consumer_priorities: true, 'basic.nack': true });
    await c.close();
  });

  it('server-properties present Warren as RabbitMQ 3.10 (kombu/Celery key on product and version) and name Warren', async () => {
    const c = await warren.open();
    const props = startArgs(c).serverProperties;
    expect(props).toMatchObject({ product: 'RabbitMQ', version: '3.10.0', warren_version: WARREN_VERSION });
    expect(props.platform).toBe(`Warren ${WARREN_VERSION} on Node.js ${process.version}`);
    expect(props.information).toMatch(/^Warren \S+, an AMQP 0-9-1 broker compatible with RabbitMQ 3\.10\.0\./);
    await c.close();
  });

  it('a message goes round trip: declare, publish (header + body frames), basic.get', async () => {
    const c = await warren.open();
    await c.openChannel(1);
    const q = await declareServerNamed(c);
    c.write(Buffer.concat([encodeMethod(1, M.BasicPublish, basicPublishArgs('', q)), encodeContentHeader(1, 5), encodeBody(1, Buffer.from('hello'))]));
    c.sendMethod(1, M.BasicGet, args().short(0).shortstr(q).bits(true).toBuffer());
    const ok = await c.expectMethod(M.BasicGetOk);
    expect(ok.channel).toBe(1);
    await c.nextFrame(); // content header
    expect((await c.nextFrame()).payload.toString()).toBe('hello');
    await c.close();
  });

  it('the AMQP 0-9 header ("AMQP" 1 1 0 9) is spoken to as 0-9-1, as RabbitMQ does', async () => {
    const c = RawClient.over(warren.connect());
    await c.handshake(IN_MEMORY_URL, {}, PROTOCOL_HEADER_0_9);
    const start = startArgs(c);
    expect([start.versionMajor, start.versionMinor]).toEqual([0, 9]);
    await c.openChannel(1);
    expect(await declareServerNamed(c)).toMatch(/^amq\.gen-/);
    await c.close();
  });

  it.each([
    ['AMQP 0-8 (as RabbitMQ, which speaks 0-8 to it, Warren does not)', [0x41, 0x4d, 0x51, 0x50, 1, 1, 8, 0]],
    ['AMQP 0-9-0', [0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 0]],
    ['AMQP 1.0', [0x41, 0x4d, 0x51, 0x50, 0, 1, 0, 0]],
  ])('%s is answered with the AMQP 0-9-1 header and the stream ends', async (_name, header) => {
    const c = RawClient.over(warren.connect());
    c.write(Buffer.from(header));
    expect([...(await c.readUntilClose())]).toEqual([...PROTOCOL_HEADER]);
  });

  it('a protocol header it does not speak is answered with AMQP 0-9-1 and the stream ends', async () => {
    const c = RawClient.over(warren.connect());
    c.write(Buffer.from('AMQP\x00\x00\x08\x00', 'latin1'));
    expect([...(await c.readUntilClose())]).toEqual([...PROTOCOL_HEADER]);
  });

  it('a channel error closes only the channel: the number can be opened again', async () => {
    const c = await warren.open();
    await c.openChannel(1);
    c.sendMethod(1, M.QueueDeclare, args().short(0).shortstr('no-such-queue').bits(true, false, false, false, false).table().toBuffer());
    await c.expectChannelClose(1, { code: 404, text: "NOT_FOUND - no queue 'no-such-queue' in vhost '/'", method: [50, 10] });
    await c.openChannel(1);
    expect(await declareServerNamed(c)).toMatch(/^amq\.gen-/);
    await c.close();
  });

  it('a connection error closes the connection and the stream', async () => {
    const c = await warren.open();
    c.sendMethod(3, M.QueueDeclare, queueDeclareArgs('', { exclusive: true }));
    await c.expectConnectionClose({ code: 504, text: "CHANNEL_ERROR - expected 'channel.open'", method: [50, 10] });
  });

  it('closing the broker closes every client with 320 CONNECTION_FORCED', async () => {
    const own = await startInMemoryBroker();
    const clients = await Promise.all([own.open(), own.open()]);
    const closes = clients.map((c) => c.expectConnectionClose({ code: 320, text: /^CONNECTION_FORCED - / }));
    await own.close();
    await Promise.all(closes);
  });
});
