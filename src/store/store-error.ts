/**
 * The store cannot be used as asked: the data directory is locked by another Warren,
 * holds an unknown format or something that is not a Warren store, or cannot be opened.
 * Startup reports it and stops; the store never wipes or silently reinterprets data.
 */
export class StoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
  }
}
