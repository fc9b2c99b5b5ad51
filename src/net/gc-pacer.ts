/**
 * Runs a young-generation collection after every few MiB of network traffic.
 *
 * Why: every socket read and every noise frame sealed or opened is a new buffer outside V8's heap,
 * while the JS objects around them are small, so a transfer fills the young generation slowly and
 * its dead buffers wait for the next full collection. With V8's marking triggers set late (so a
 * transfer is not marked through again every ~15 MB, src/cli/daemon-runtime.ts) those dead buffers
 * piled up to V8's 64 MB external-memory limit on each side: a replicating pair peaked at 247 and
 * 256 MiB. A scavenge every 4 MiB freed the ones that died young for ~1 ms each; with the receiver
 * copying blocks out of the received frames at once (src/pinning/pool/transfer.ts) the same
 * benchmark peaked at 238 and 195 MiB (bench/results.md). Every 8 MiB halves those pauses (a
 * scavenge per 4 MiB was ~7 % of a receiver's main thread) at about the same peaks.
 *
 * `note()` is called on the hot path (once per noise frame), so it only counts; the collection
 * itself runs from `setImmediate`, off any caller's stack, and never more than one is pending.
 */
export interface GcPacerComponents {
  /** A young-generation collection (V8's `gc({ type: 'minor' })`). */
  minorGc(): void
}

export interface GcPacerInit {
  /** Bytes of traffic between two collections. Default 8 MiB. */
  everyBytes?: number
}

export interface GcPacer {
  /** Counts `bytes` moved; schedules a collection once `everyBytes` have been counted since the last. */
  note(bytes: number): void
  /** Collections run so far. */
  readonly collections: number
  /** Cancels a scheduled collection; later `note` calls schedule again. */
  stop(): void
}

export function createGcPacer (components: GcPacerComponents, init: GcPacerInit = {}): GcPacer {
  const everyBytes = init.everyBytes ?? 8 * 1024 * 1024
  let counted = 0
  let pending: ReturnType<typeof setImmediate> | undefined
  let collections = 0

  const collect = (): void => {
    pending = undefined
    counted = 0
    collections++
    components.minorGc()
  }

  return {
    note (bytes) {
      counted += bytes
      if (counted < everyBytes || pending != null) return
      pending = setImmediate(collect)
    },
    get collections () {
      return collections
    },
    stop () {
      if (pending != null) clearImmediate(pending)
      pending = undefined
    }
  }
}
