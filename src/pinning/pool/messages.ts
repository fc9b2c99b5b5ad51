import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { CID } from 'multiformats/cid'
import { z } from 'zod'
import { PoolProtocolError } from '../errors.ts'
import type { AbortOptions, PrivateKey, Stream } from '@libp2p/interface'

export const PIN_PROTOCOL = '/pinbox/pin/1.0.0'
export const DAG_PROTOCOL = '/pinbox/dag/1.0.0'
export const MESSAGE_VERSION = 1
/** One message, request or response; a request of 1,000 CIDs with sizes is well under it. */
export const MAX_MESSAGE_BYTES = 1024 * 1024
export const MAX_CIDS_PER_REQUEST = 1000

export const REFUSALS = ['not-a-member', 'over-share', 'over-quota', 'rate-limited', 'too-large', 'fetch-failed', 'bad-request', 'busy'] as const
export type Refusal = typeof REFUSALS[number]

const cidString = z.string().min(1).max(200)

const pinRequest = z.strictObject({
  v: z.literal(MESSAGE_VERSION),
  type: z.literal('pin'),
  /** `size`: the DAG's bytes as the requester counts them; the transfer is held to it. */
  items: z.array(z.strictObject({ cid: cidString, size: z.number().int().min(0) })).min(1).max(MAX_CIDS_PER_REQUEST)
})

const statusRequest = z.strictObject({
  v: z.literal(MESSAGE_VERSION),
  type: z.literal('status'),
  cids: z.array(cidString).min(1).max(MAX_CIDS_PER_REQUEST)
})

const releaseRequest = z.strictObject({
  v: z.literal(MESSAGE_VERSION),
  type: z.literal('release'),
  cids: z.array(cidString).min(1).max(MAX_CIDS_PER_REQUEST)
})

export const pinProtocolRequest = z.discriminatedUnion('type', [pinRequest, statusRequest, releaseRequest])
export type PinProtocolRequest = z.infer<typeof pinProtocolRequest>

export interface PinItemResult {
  cid: string
  ok: boolean
  reason?: Refusal
  /** Base64 receipt (see `encodeReceipt`) when `ok`. */
  receipt?: string
}

export interface PinProtocolResponse {
  v: typeof MESSAGE_VERSION
  /** Set when the whole request was refused (stranger, flood, malformed). */
  refused?: Refusal
  message?: string
  items?: PinItemResult[]
  /** `status`: which of the asked CIDs this peer holds for the requester. */
  held?: boolean[]
}

const pinProtocolResponse = z.object({
  v: z.literal(MESSAGE_VERSION),
  refused: z.enum(REFUSALS).optional(),
  message: z.string().max(1000).optional(),
  items: z.array(z.object({
    cid: cidString,
    ok: z.boolean(),
    reason: z.enum(REFUSALS).optional(),
    receipt: z.string().max(4096).optional()
  })).max(MAX_CIDS_PER_REQUEST).optional(),
  held: z.array(z.boolean()).max(MAX_CIDS_PER_REQUEST).optional()
})

const dagRequest = z.strictObject({
  v: z.literal(MESSAGE_VERSION),
  /** Whole DAGs, walked by the holder. */
  roots: z.array(cidString).max(MAX_CIDS_PER_REQUEST).default([]),
  /** Single blocks (repair), sent as they are, no walk. */
  blocks: z.array(cidString).max(MAX_CIDS_PER_REQUEST * 10).default([])
})
export type DagRequest = z.infer<typeof dagRequest>

function decodeJson<T> (schema: z.ZodType<T>, bytes: Uint8Array, what: string): T {
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder().decode(bytes))
  } catch (err) {
    throw new PoolProtocolError(`${what} is not JSON`, { cause: err })
  }
  const parsed = schema.safeParse(json)
  if (!parsed.success) {
    throw new PoolProtocolError(`invalid ${what}: ${parsed.error.issues[0]?.message ?? 'bad shape'}`)
  }
  return parsed.data
}

export const decodePinRequest = (bytes: Uint8Array): PinProtocolRequest => decodeJson(pinProtocolRequest, bytes, 'pin request')
export const decodePinResponse = (bytes: Uint8Array): PinProtocolResponse => decodeJson(pinProtocolResponse, bytes, 'pin response') as PinProtocolResponse
export const decodeDagRequest = (bytes: Uint8Array): DagRequest => decodeJson(dagRequest, bytes, 'dag request')

export function encodeMessage (value: unknown): Uint8Array {
  const bytes = new TextEncoder().encode(JSON.stringify(value))
  if (bytes.byteLength > MAX_MESSAGE_BYTES) {
    throw new PoolProtocolError(`message of ${bytes.byteLength} bytes exceeds ${MAX_MESSAGE_BYTES}`)
  }
  return bytes
}

export function parseCids (values: string[]): CID[] {
  return values.map(v => {
    try {
      return CID.parse(v)
    } catch (err) {
      throw new PoolProtocolError(`invalid CID "${v.slice(0, 100)}"`, { cause: err })
    }
  })
}

/** Length-prefixed framing capped at one message size, so a peer cannot make us buffer more. */
export function messageStream (stream: Stream): ReturnType<typeof lpStream<Stream>> {
  return lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
}

/** Resets the stream with what was thrown, so the other end sees a failure rather than an end. */
export function abortStream (stream: Stream, err: unknown): void {
  stream.abort(err instanceof Error ? err : new Error(String(err)))
}

/** One request, one response, on a fresh stream. */
export async function exchange (stream: Stream, request: unknown, options: AbortOptions): Promise<PinProtocolResponse> {
  const lp = messageStream(stream)
  await lp.write(encodeMessage(request), options)
  const response = decodePinResponse((await lp.read(options)).subarray())
  await stream.close(options).catch(() => {})
  return response
}

/** What a replica holder signs: it stored `size` bytes of `cid` for `requester` at `pinnedAt`. */
export interface ReceiptPayload {
  cid: string
  peer: string
  requester: string
  pinnedAt: number
  size: number
}

const receiptSchema = z.strictObject({
  p: z.string().max(2048),
  s: z.string().max(1024)
})

const receiptPayload = z.strictObject({
  cid: cidString,
  peer: z.string().max(200),
  requester: z.string().max(200),
  pinnedAt: z.number(),
  size: z.number().int().min(0)
})

/** Base64 of `{p: payload JSON, s: base64 signature over the payload bytes}`: the exact signed bytes travel along. */
export async function encodeReceipt (privateKey: PrivateKey, payload: ReceiptPayload): Promise<string> {
  const bytes = new TextEncoder().encode(JSON.stringify(payload))
  const sig = await privateKey.sign(bytes)
  return Buffer.from(JSON.stringify({ p: Buffer.from(bytes).toString('base64'), s: Buffer.from(sig).toString('base64') })).toString('base64')
}

/** The payload when the signature is the payload's `peer`'s, else undefined. */
export async function verifyReceipt (receipt: string): Promise<ReceiptPayload | undefined> {
  try {
    const outer = receiptSchema.parse(JSON.parse(Buffer.from(receipt, 'base64').toString('utf8')))
    const bytes = Buffer.from(outer.p, 'base64')
    const payload = receiptPayload.parse(JSON.parse(bytes.toString('utf8')))
    const key = peerIdFromString(payload.peer).publicKey
    if (key == null) return undefined
    return await key.verify(bytes, Buffer.from(outer.s, 'base64')) ? payload : undefined
  } catch {
    return undefined
  }
}
