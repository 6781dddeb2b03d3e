/**
 * V8 flags the broker process is started with: by `npm start` (package.json), by the
 * `warren` executable (its #! line) and by every harness that starts a broker process
 * (bench/, test/), so that what is measured and tested is what users run. Runtime
 * setFlagsFromString cannot set these: V8 aborts when its GC threads are switched off
 * after the heap is set up.
 *
 * --single-threaded-gc: V8's GC helper threads (4 by default, concurrent marking and
 * parallel scavenges) cost more than they save for a broker's heap, which is small while
 * message bodies live outside it as ArrayBuffers. With 64 KiB bodies (~10 full
 * collections a second, driven by ArrayBuffer memory) the helpers took ~0.4 of a core on
 * this project's 2-core bench machine and the main thread did more work per MB, not
 * less; without them: ~1.35x the MB/s at ~0.7x the broker CPU (bench/results, 64 KiB).
 */
export const BROKER_NODE_FLAGS: readonly string[] = ['--single-threaded-gc'];
