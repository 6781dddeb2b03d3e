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
 *
 * --initial-old-space-size=128: without it V8 sizes the old generation's limit from the
 * live heap, which a broker keeps small (~20 MB with a 64 KiB flood), so full collections
 * came about twice as often as the ArrayBuffer memory alone starts them (9 against 4.5 a
 * second in the 64 KiB flood), half of the main thread's busy time. With a 128 MB floor the
 * limit no longer starts them for a small heap. The heap is not made that big: it only
 * holds more garbage between collections. Warren-only A/B, 1-2 runs each
 * (bench/results/gc-old-space-2026-12-05/): broker CPU per 64 KiB message 0.76-0.83x, the
 * 1 KiB flood 1.40x msg/s (peak RSS 422 against 377 MiB), the other suite entries tried
 * 1.02-1.14x, the 1M backlog's peak RSS 0.96x, RSS per idle connection 19 -> 23-27 KiB.
 */
export const BROKER_NODE_FLAGS: readonly string[] = ['--single-threaded-gc', '--initial-old-space-size=128'];
