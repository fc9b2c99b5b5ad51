/**
 * Worker side of merkle-pool.ts: hashes whole chunks to their subtree roots and hands the
 * input buffer back so the pool can refill it without allocating.
 */
import { parentPort } from 'node:worker_threads'
import { hashChunks } from './merkle.ts'

export interface ChunkJob {
  id: number
  buffer: ArrayBuffer
  length: number
}

export interface ChunkResult {
  id: number
  buffer: ArrayBuffer
  roots: Uint8Array
}

const port = parentPort
if (port != null) {
  port.on('message', (job: ChunkJob) => {
    const roots = hashChunks(new Uint8Array(job.buffer, 0, job.length))
    const result: ChunkResult = { id: job.id, buffer: job.buffer, roots }
    port.postMessage(result, [job.buffer, roots.buffer as ArrayBuffer])
  })
}
