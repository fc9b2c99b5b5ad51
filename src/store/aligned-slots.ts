/**
 * Fixed-size, 4 KiB-aligned buffers for O_DIRECT I/O (src/store/direct-writer.ts,
 * src/store/direct-reader.ts).
 *
 * JavaScript cannot choose where a buffer lives, but a WebAssembly memory is a page-aligned
 * mapping, so every slot is a slice of one. The mapping is made on the first `take()` and let go
 * after `idleMs` with no slot out, so an idle box holds none of it; pages are only resident once
 * touched, so slots never used cost address space, not memory.
 */
export interface AlignedSlots {
  /** A free slot (`slotBytes` long), or undefined when every one is out. */
  take(): Uint8Array | undefined
  /** Gives back a slot from `take()`; a slot of a mapping let go since is dropped. */
  give(slot: Uint8Array): void
  /** The slot `view` starts, when it starts one of the current mapping's slots. */
  slotOf(view: Uint8Array): Uint8Array | undefined
  /** Lets the mapping go now; slots still out are not reused. */
  unmap(): void
  readonly slotBytes: number
  readonly free: number
  readonly mapped: boolean
}

export interface AlignedSlotsInit {
  /** Rounded up to `align`. */
  slotBytes: number
  slots: number
  /** Default 4096, which suits every common disk (512-byte and 4 KiB sectors). */
  align?: number
  /** Default 10 s. */
  idleMs?: number
}

// lib ES2023 has no WebAssembly types; this is the one constructor used
declare const WebAssembly: { Memory: new (descriptor: { initial: number, maximum: number }) => { readonly buffer: ArrayBuffer } }

const WASM_PAGE = 65536

export function createAlignedSlots (init: AlignedSlotsInit): AlignedSlots {
  const align = init.align ?? 4096
  const slotBytes = Math.ceil(init.slotBytes / align) * align
  const slotCount = init.slots
  const idleMs = init.idleMs ?? 10_000
  let slots: Uint8Array[] | undefined
  let free: Uint8Array[] = []
  // slots out, of the current mapping
  const out = new Set<Uint8Array>()
  let idleTimer: NodeJS.Timeout | undefined

  const unmap = (): void => {
    clearTimeout(idleTimer)
    idleTimer = undefined
    slots = undefined
    free = []
    out.clear()
  }

  return {
    take () {
      if (slots == null) {
        // one mapping for every slot: each WebAssembly memory reserves a large guarded address range
        const pages = Math.ceil(slotBytes * slotCount / WASM_PAGE)
        const memory = new WebAssembly.Memory({ initial: pages, maximum: pages })
        slots = Array.from({ length: slotCount }, (_, i) => new Uint8Array(memory.buffer, i * slotBytes, slotBytes))
        free = [...slots]
      }
      const slot = free.pop()
      if (slot == null) return undefined
      out.add(slot)
      clearTimeout(idleTimer)
      idleTimer = undefined
      return slot
    },
    give (slot) {
      if (!out.delete(slot)) return
      free.push(slot)
      if (out.size === 0) {
        clearTimeout(idleTimer)
        idleTimer = setTimeout(unmap, idleMs)
        idleTimer.unref()
      }
    },
    slotOf (view) {
      if (slots == null || view.buffer !== slots[0]?.buffer || view.byteOffset % slotBytes !== 0) return undefined
      return slots[view.byteOffset / slotBytes]
    },
    unmap,
    slotBytes,
    get free () {
      return free.length
    },
    get mapped () {
      return slots != null
    }
  }
}
