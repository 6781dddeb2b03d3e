import { createServer, type Server, type Socket } from 'node:net';

/** TCP listener: Nagle off (AMQP frames are small and latency matters), one callback per socket. */
export function listen(host: string, port: number, onSocket: (socket: Socket) => void): Promise<Server> {
  const server = createServer({ noDelay: true }, (socket) => {
    socket.setNoDelay(true);
    onSocket(socket);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
