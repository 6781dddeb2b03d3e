import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP forwarder that can be switched to a blackhole: bytes stop flowing both ways while
 * sockets stay open (a partition, not a reset). Healing resets the connections that lived
 * through the partition (their streams lost bytes), so clients reconnect.
 */
export class BlackholeProxy {
  private server: Server | null = null;
  private readonly pairs = new Set<{ a: Socket; b: Socket }>();
  private blackhole = false;
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async start(): Promise<number> {
    const server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    this.server = server;
    const addr = server.address();
    this.port = typeof addr === 'object' && addr !== null ? addr.port : 0;
    return this.port;
  }

  private accept(client: Socket): void {
    const upstream = connect({ host: this.targetHost, port: this.targetPort });
    const pair = { a: client, b: upstream };
    this.pairs.add(pair);
    const end = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (d) => {
      if (!this.blackhole) upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (!this.blackhole) client.write(d);
    });
    for (const s of [client, upstream]) {
      s.on('error', end);
      s.on('close', end);
    }
  }

  cut(): void {
    this.blackhole = true;
  }

  heal(): void {
    this.blackhole = false;
    for (const p of [...this.pairs]) {
      p.a.destroy();
      p.b.destroy();
    }
    this.pairs.clear();
  }

  async stop(): Promise<void> {
    for (const p of this.pairs) {
      p.a.destroy();
      p.b.destroy();
    }
    const server = this.server;
    this.server = null;
    if (server !== null) await new Promise<void>((r) => server.close(() => r()));
  }
}
