/**
 * Builds a commitment with whole chunks hashed on worker threads. Per-call overhead of
 * `crypto.hash()` caps one thread at roughly a quarter of plain sha256 speed, so large
 * inputs go to workers; small ones never pay for starting them.
 */
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { CHUNK_SIZE, createCommitmentBuilder, hashChunks } from './merkle.ts'
import type { MerkleCommitment } from './merkle.ts'
import type { ChunkJob, ChunkResult } from './merkle-worker.ts'

/** Chunks per worker message: big enough to amortise messaging, small enough to pipeline. */
const BATCH_CHUNKS = 4
const BATCH_SIZE = BATCH_CHUNKS * CHUNK_SIZE

export interface ParallelBuilderInit {
  /** Worker threads; 0 hashes everything on the calling thread. Default: cores, at most 4. */
  workers?: number
  /**
   * Bytes hashed on the calling thread before workers are started. Default 64 MiB: the calling
   * thread does ~0.9 GB/s, so below that starting workers (tens of ms, more on a busy box)
   * cannot pay off.
   */
  parallelThreshold?: number
}

export interface ParallelCommitmentBuilder {
  /** Resolves once the bytes are copied or hashed; waits when workers fall behind. */
  update(bytes: Uint8Array): Promise<void>
  digest(): Promise<MerkleCommitment>
  /** Stops the workers; safe to call more than once, also after digest(). */
  close(): Promise<void>
}

interface Pending {
  resolve(result: ChunkResult): void
  reject(err: Error): void
}

class ChunkPool {
  private readonly workers: Worker[] = []
  private readonly pending = new Map<number, Pending>()
  private nextId = 0
  private failure: Error | undefined

  constructor (size: number) {
    for (let i = 0; i < size; i++) {
      const worker = new Worker(new URL('./merkle-worker.ts', import.meta.url))
      worker.on('message', (result: ChunkResult) => {
        const p = this.pending.get(result.id)
        this.pending.delete(result.id)
        p?.resolve(result)
      })
      worker.on('error', err => { this.fail(err) })
      worker.on('exit', code => {
        if (code !== 0) this.fail(new Error(`Hashing worker exited with code ${code}`))
      })
      this.workers.push(worker)
    }
  }

  private fail (err: Error): void {
    this.failure ??= err
    for (const p of this.pending.values()) p.reject(err)
    this.pending.clear()
  }

  hash (buffer: ArrayBuffer, length: number): Promise<ChunkResult> {
    if (this.failure != null) return Promise.reject(this.failure)
    const id = this.nextId++
    const worker = this.workers[id % this.workers.length] as Worker
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      const job: ChunkJob = { id, buffer, length }
      worker.postMessage(job, [buffer])
    })
  }

  async close (): Promise<void> {
    this.fail(new Error('Hashing pool closed'))
    await Promise.all(this.workers.map(async w => w.terminate()))
    this.workers.length = 0
  }
}

class ParallelBuilder implements ParallelCommitmentBuilder {
  private readonly builder = createCommitmentBuilder()
  private readonly workerCount: number
  private readonly threshold: number
  private pool: ChunkPool | undefined
  /** Results in dispatch order; applied to the tree strictly in that order. */
  private readonly inFlight: Array<Promise<ChunkResult>> = []
  private readonly free: ArrayBuffer[] = []
  private batch: Uint8Array
  private filled = 0
  private dispatched = 0

  constructor (init: ParallelBuilderInit) {
    this.workerCount = Math.max(0, Math.floor(init.workers ?? Math.min(availableParallelism(), 4)))
    this.threshold = init.parallelThreshold ?? 64 * 1024 * 1024
    this.batch = new Uint8Array(BATCH_SIZE)
  }

  async update (bytes: Uint8Array): Promise<void> {
    let offset = 0
    while (offset < bytes.length) {
      const take = Math.min(BATCH_SIZE - this.filled, bytes.length - offset)
      this.batch.set(bytes.subarray(offset, offset + take), this.filled)
      this.filled += take
      offset += take
      if (this.filled === BATCH_SIZE) await this.dispatch()
    }
  }

  private async dispatch (): Promise<void> {
    const batch = this.batch
    this.filled = 0
    this.dispatched += BATCH_SIZE
    if (this.workerCount === 0 || this.dispatched <= this.threshold) {
      this.builder.appendChunkRoots(hashChunks(batch), BATCH_CHUNKS)
      return
    }
    this.pool ??= new ChunkPool(this.workerCount)
    const job = this.pool.hash(batch.buffer as ArrayBuffer, BATCH_SIZE)
    // A worker crash rejects every queued job at once; applyOldest() reports the first.
    job.catch(() => {})
    this.inFlight.push(job)
    this.batch = new Uint8Array(this.free.pop() ?? new ArrayBuffer(BATCH_SIZE))
    // Two jobs per worker keep each busy while its next batch is being filled.
    if (this.inFlight.length >= 2 * this.workerCount) await this.applyOldest()
  }

  private async applyOldest (): Promise<void> {
    const result = await (this.inFlight.shift() as Promise<ChunkResult>)
    this.builder.appendChunkRoots(result.roots, result.roots.length / 32)
    this.free.push(result.buffer)
  }

  async digest (): Promise<MerkleCommitment> {
    try {
      while (this.inFlight.length > 0) await this.applyOldest()
      this.builder.update(this.batch.subarray(0, this.filled))
      return this.builder.digest()
    } finally {
      await this.close()
    }
  }

  async close (): Promise<void> {
    const pool = this.pool
    this.pool = undefined
    this.inFlight.length = 0
    await pool?.close()
  }
}

export function createParallelCommitmentBuilder (init: ParallelBuilderInit = {}): ParallelCommitmentBuilder {
  return new ParallelBuilder(init)
}
