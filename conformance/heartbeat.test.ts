import { describe, expect, it } from 'vitest';
import { amqpUrl, encodeHeartbeat, FrameType, RawClient } from './support/index.js';

/** Heartbeats (spec: connection.tune heartbeat; RabbitMQ drops a peer silent for two intervals). */
describe('heartbeats', () => {
  it('the broker sends heartbeat frames on an idle connection with the negotiated interval', async () => {
    const { client, tune } = await RawClient.open(amqpUrl(), { heartbeat: 1 });
    expect(tune.heartbeat).toBeGreaterThan(0);
    // answer like a live client so the broker keeps the connection
    const keepAlive = setInterval(() => client.write(encodeHeartbeat()), 300);
    try {
      const frame = await client.nextFrame();
      expect(frame.type).toBe(FrameType.Heartbeat);
      expect(frame.channel).toBe(0);
      expect(frame.payload.length).toBe(0);
    } finally {
      clearInterval(keepAlive);
      client.socket.destroy();
    }
  });

  it('a client that stays silent past two heartbeat intervals is disconnected', async () => {
    const { client } = await RawClient.open(amqpUrl(), { heartbeat: 1 });
    // we send nothing at all: the broker must give up on us (vitest's timeout bounds the wait)
    await client.closed;
    expect(client.socket.destroyed || client.socket.readableEnded).toBe(true);
  });

  it('heartbeat 0 in tune-ok disables heartbeats: the connection keeps working', async () => {
    const { client, tune } = await RawClient.open(amqpUrl(), { heartbeat: 0 });
    expect(tune.heartbeat).toBe(0);
    client.socket.destroy();
  });
});
