import { describe, expect, it } from 'vitest';
import { StatsSampler, type SampledConnection, type SampledVhost } from '../../src/monitoring/sampler.js';
import { ChannelCounters, ExchangeCounters, QueueCounters, VhostCounters } from '../../src/stats/counters.js';

function fixture() {
  const queue = { stats: new QueueCounters(), messageCount: 0, unackedCount: 0 };
  const exchange = { stats: new ExchangeCounters() };
  const vhost: SampledVhost = { name: '/', stats: new VhostCounters(), queues: new Map([['q', queue]]), exchanges: new Map([['x', exchange]]) };
  const vhosts = new Set<SampledVhost>([vhost]);
  const connections = new Set<SampledConnection>();
  const sampler = new StatsSampler({ vhosts: () => vhosts, connections: () => connections }, 1000);
  return { sampler, queue, exchange, vhost, vhosts, connections };
}

describe('StatsSampler', () => {
  it('counts a channel that opened and closed between two ticks', () => {
    const { sampler } = fixture();
    sampler.tick(1000);
    const ch = new ChannelCounters();
    let gone = false;
    sampler.trackChannel(ch, '/', () => gone);
    ch.publish = 7;
    ch.ack = 3;
    gone = true;
    sampler.tick(2000);
    expect(sampler.global.messages).toMatchObject({ publish: 7, ack: 3 });
    expect(sampler.totalsOf('/').messages).toMatchObject({ publish: 7, ack: 3 });
    expect(sampler.churn).toMatchObject({ channelCreated: 1, channelClosed: 1 });
    // and never again
    sampler.tick(3000);
    expect(sampler.global.messages.publish).toBe(7);
  });

  it('turns counters into per-second rates over the last tick, and queue depths into signed rates', () => {
    const { sampler, queue, exchange } = fixture();
    const ch = new ChannelCounters();
    sampler.trackChannel(ch, '/', () => false);
    sampler.tick(1000);
    ch.publish = 500;
    queue.stats.publish = 500;
    queue.messageCount = 200;
    exchange.stats.publishIn = 500;
    sampler.tick(3000);
    const rate = (s: { rates: { rate: Float64Array } | null }, i: number) => s.rates!.rate[i];
    expect(rate(ch, ChannelCounters.FIELDS.indexOf('publish'))).toBe(250);
    expect(rate(sampler.global.messages, ChannelCounters.FIELDS.indexOf('publish'))).toBe(250);
    expect(rate(queue.stats, QueueCounters.FIELDS.indexOf('publish'))).toBe(250);
    expect(rate(exchange.stats, 0)).toBe(250);
    expect(rate(queue.stats, QueueCounters.FIELDS.length + 1)).toBe(100); // messages_ready +200 in 2 s
    queue.messageCount = 0;
    sampler.tick(4000);
    expect(rate(queue.stats, QueueCounters.FIELDS.length + 1)).toBe(-200);
    expect(sampler.historySince(0).map((p) => p.publish)).toEqual([250, 0]);
    expect(sampler.historySince(3000)).toHaveLength(1);
  });

  it('keeps the queue churn of a deleted vhost in the broker-wide counts', () => {
    const { sampler, vhost, vhosts } = fixture();
    vhost.stats.queueDeclared = 3;
    vhost.stats.queueCreated = 2;
    sampler.fold();
    vhost.stats.queueDeleted = 2;
    vhosts.delete(vhost);
    sampler.fold();
    expect(sampler.churn).toMatchObject({ queueDeclared: 3, queueCreated: 2, queueDeleted: 2 });
    sampler.fold();
    expect(sampler.churn.queueDeleted).toBe(2);
  });

  it('adds a connection\'s traffic to its vhost once it is open, and its last bytes when it closes', () => {
    const { sampler, connections } = fixture();
    const conn = { stats: { recvOct: 100, recvCnt: 1, rates: null }, out: { bytesWritten: 50 }, vhostName: '', channels: new Map() };
    connections.add(conn);
    sampler.trackConnection(conn);
    sampler.fold();
    expect(sampler.global.recvOct).toBe(0);
    conn.vhostName = '/';
    conn.stats.recvOct = 300;
    sampler.fold();
    expect(sampler.totalsOf('/')).toMatchObject({ recvOct: 300, sendOct: 50 });
    conn.out.bytesWritten = 80;
    connections.delete(conn);
    sampler.connectionClosed(conn);
    expect(sampler.global).toMatchObject({ recvOct: 300, sendOct: 80 });
    expect(sampler.churn).toMatchObject({ connectionCreated: 1, connectionClosed: 1 });
  });
});
