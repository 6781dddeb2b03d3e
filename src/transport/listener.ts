import { createServer, Socket, type Server } from 'node:net';

/** Where a socket's reads go when they land in the shared read buffer. */
export interface ReadSink {
  /** buf[0, length) was just read into (the head of) the shared buffer, which the next read of any socket reuses */
  borrowedRead(buf: Buffer, length: number): void;
  /** a buffer of the sink's own for the next read (the rest of a big payload), or null: the shared one */
  readTarget(): Buffer | null;
  /** length octets were read into readTarget()'s buffer */
  filledRead(length: number): void;
}

/** A socket's link to its reader: set `sink` before the event loop turns. */
export interface SharedReadInput {
  sink: ReadSink | null;
}

/**
 * Every plain TCP client socket reads into this one buffer (net.Socket's `onread`), and
 * its reader handles the bytes before the callback returns (see FrameReader.release).
 * Node's default allocates a fresh 64 KiB buffer for each read and then copies a short
 * read into one of its own size; under a stream of big bodies that was a 64 KiB buffer
 * per read on top of the body's own copy, and V8 runs a full collection for every
 * 64 MiB of such external memory. Reads run one at a time on the event loop thread, so
 * one buffer serves all sockets; a read takes up to its size in one system call.
 */
export const SHARED_READ_SIZE = 256 * 1024;
/**
 * After a read straight into a payload's own buffer, the next read takes only this much
 * of the shared buffer: in a stream of big bodies it holds the frame end, the next
 * publish's method and header frames and the start of its body, whose rest is then read
 * straight into place too. Each big body is then copied for its first few KiB only, at
 * the price of a second read system call per body. Otherwise reads take the whole buffer.
 */
export const SHARED_READ_HEAD = 8 * 1024;
let sharedReadBuffer: Buffer | null = null;
let sharedReadHead: Buffer | null = null;

type HandleSocket = Socket & { _handle?: { useUserBuffer?: unknown } | null };

/**
 * The accepted socket's handle, re-wrapped into a socket that reads into the shared
 * buffer, or null when this Node cannot (no handle to take: then 'data' events are used).
 * net.Server has no `onread` option; a socket built on the accepted handle (paused since
 * accept, so nothing was read) gets one. The accepted socket object stays the server's
 * connection count and is released when the new one closes.
 */
function rewrap(accepted: Socket): { socket: Socket; input: SharedReadInput } | null {
  const a = accepted as HandleSocket;
  const handle = a._handle;
  if (handle === null || handle === undefined || typeof handle.useUserBuffer !== 'function') return null;
  const input: SharedReadInput = { sink: null };
  const buffer = (sharedReadBuffer ??= Buffer.allocUnsafeSlow(SHARED_READ_SIZE));
  const head = (sharedReadHead ??= buffer.subarray(0, SHARED_READ_HEAD));
  let lastReadWasOwn = false;
  let socket: Socket;
  try {
    socket = new Socket({
      handle,
      onread: {
        // called once at the start and again after every read
        buffer: (): Uint8Array => {
          let own: Buffer | null = null;
          try {
            own = input.sink?.readTarget() ?? null;
          } catch {
            // never seen: readTarget only looks at the reader's state
          }
          if (own !== null) {
            lastReadWasOwn = true;
            return own;
          }
          if (lastReadWasOwn) {
            lastReadWasOwn = false;
            return head;
          }
          return buffer;
        },
        callback: (length: number, buf: Uint8Array): boolean => {
          const sink = input.sink;
          if (sink === null) {
            socket.destroy();
            return false;
          }
          try {
            if (buf === buffer || buf === head) sink.borrowedRead(buf as Buffer, length);
            else sink.filledRead(length);
          } catch (err) {
            // never seen (borrowedRead contains its own failures): this socket ends, the broker goes on
            socket.destroy(err instanceof Error ? err : new Error(String(err)));
            return false;
          }
          return true;
        },
      },
    } as ConstructorParameters<typeof Socket>[0] & { handle: unknown });
  } catch {
    return null;
  }
  a._handle = null;
  socket.once('close', () => accepted.destroy());
  return { socket, input };
}

/**
 * TCP listener: Nagle off (AMQP frames are small and latency matters), one callback per
 * socket. With `sharedReads`, sockets read into the shared buffer (the callback's input
 * must get its sink at once); without, they emit 'data' events as usual (input null).
 */
export function listen(
  host: string,
  port: number,
  onSocket: (socket: Socket, input: SharedReadInput | null) => void,
  options: { sharedReads?: boolean } = {},
): Promise<Server> {
  const sharedReads = options.sharedReads === true;
  // paused on accept: nothing is read before the socket is re-wrapped
  const server = createServer({ noDelay: true, pauseOnConnect: sharedReads }, (accepted) => {
    const wrapped = sharedReads ? rewrap(accepted) : null;
    const socket = wrapped?.socket ?? accepted;
    socket.setNoDelay(true);
    onSocket(socket, wrapped?.input ?? null);
    // could not re-wrap: the callback has its 'data' listener now
    if (sharedReads && wrapped === null) accepted.resume();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
