import { decodeSpillChunk, encodeSpillChunk } from './spill-codec.js';
import type { Spill, SpillChunk, SpillEntry, SpillStream } from './store.js';

class MemoryChunk implements SpillChunk {
  constructor(
    public encoded: Buffer | null,
    readonly count: number,
    readonly size: number,
  ) {}
}

class MemoryStream implements SpillStream {
  private readonly chunks = new Set<MemoryChunk>();

  write(entries: readonly SpillEntry[]): SpillChunk {
    const encoded = encodeSpillChunk(entries);
    const chunk = new MemoryChunk(encoded, entries.length, encoded.length);
    this.chunks.add(chunk);
    return chunk;
  }

  read(chunk: SpillChunk): Promise<SpillEntry[]> {
    const c = chunk as MemoryChunk;
    if (c.encoded === null) return Promise.reject(new Error('spill chunk read after it was freed'));
    return Promise.resolve(decodeSpillChunk(c.encoded));
  }

  free(chunk: SpillChunk): void {
    (chunk as MemoryChunk).encoded = null;
    this.chunks.delete(chunk as MemoryChunk);
  }

  close(): void {
    for (const c of this.chunks) c.encoded = null;
    this.chunks.clear();
  }

  get size(): number {
    return this.chunks.size;
  }
}

/**
 * The memory store's spill: chunks are kept encoded in memory (nothing is saved, but the
 * paging paths run exactly as with the segment files, for tests and the contract).
 */
export class MemorySpill implements Spill {
  readonly writable = true;
  readonly backlogBytes = 0;
  readonly quarantinedMessages = 0;

  openStream(): SpillStream {
    return new MemoryStream();
  }
}
