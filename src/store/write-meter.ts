/**
 * Bytes the store has accepted and not yet written, for the disk alarm: what is in flight
 * still lands on the disk after publishers are blocked, so the alarm must count it before
 * ENOSPC, however fast large messages arrive (the free-space reading alone comes too late).
 *
 * The store calls `queued` for each message value it takes and `written` when a batch is
 * on disk; the disk monitor asks to be told once a given number of bytes has been queued
 * (`notifyAfter`), so its next reading comes before that much more can be written, without
 * a timer per message.
 */
export class WriteMeter {
  /** bytes queued and not yet written */
  pending = 0;
  private sinceMark = 0;
  private threshold = Number.POSITIVE_INFINITY;
  private listener: (() => void) | null = null;

  queued(bytes: number): void {
    this.pending += bytes;
    this.sinceMark += bytes;
    if (this.sinceMark >= this.threshold) {
      const listener = this.listener!;
      this.threshold = Number.POSITIVE_INFINITY;
      this.listener = null;
      listener();
    }
  }

  written(bytes: number): void {
    this.pending = Math.max(0, this.pending - bytes);
  }

  /** Calls `listener` once, from inside `queued`, when `bytes` more have been queued from now (it must not throw). */
  notifyAfter(bytes: number, listener: () => void): void {
    this.sinceMark = 0;
    this.threshold = Math.max(0, bytes);
    this.listener = listener;
  }

  cancel(): void {
    this.threshold = Number.POSITIVE_INFINITY;
    this.listener = null;
  }
}
