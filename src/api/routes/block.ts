import * as dagCbor from '@ipld/dag-cbor'
import * as dagJson from '@ipld/dag-json'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import * as json from 'multiformats/codecs/json'
import * as raw from 'multiformats/codecs/raw'
import { sha256, sha512 } from 'multiformats/hashes/sha2'
import { readBlock } from '../../content/blocks.ts'
import { BlockMissingError } from '../../content/errors.ts'
import { args, parseIpfsPath, requestSignal } from '../args.ts'
import { InvalidArgumentError, InvalidBlockError, MissingUploadError, UploadedBlockTooLargeError } from '../errors.ts'
import { readSingleUpload } from '../upload.ts'
import { q, query, rpc } from './rpc.ts'
import type { RouteOptions } from '../server.ts'
import type { FastifyInstance } from 'fastify'
import type { MultihashHasher } from 'multiformats/hashes/interface'

/** Bitswap refuses blocks over 2 MiB; a little headroom for odd DAGs, and no more. */
export const MAX_BLOCK_BYTES = 4 * 1024 * 1024

const CODECS: Readonly<Record<string, { code: number, decode(bytes: Uint8Array): unknown }>> = {
  raw: { code: raw.code, decode: raw.decode },
  'dag-pb': { code: dagPb.code, decode: dagPb.decode },
  'dag-cbor': { code: dagCbor.code, decode: dagCbor.decode },
  'dag-json': { code: dagJson.code, decode: dagJson.decode },
  json: { code: json.code, decode: json.decode }
}

/** Kubo's deprecated `--format` names. */
const LEGACY_FORMATS: Readonly<Record<string, string>> = {
  v0: 'dag-pb',
  protobuf: 'dag-pb',
  'dag-pb': 'dag-pb',
  cbor: 'dag-cbor',
  'dag-cbor': 'dag-cbor',
  raw: 'raw'
}

const HASHERS: Readonly<Record<string, MultihashHasher>> = {
  'sha2-256': sha256,
  'sha2-512': sha512
}

const keySizeResponse = {
  200: { type: 'object', properties: { Key: { type: 'string' }, Size: { type: 'integer' } } }
} as const

interface PutQuery {
  'cid-codec'?: string
  format?: string
  mhtype?: string
    pin?: boolean
}

export async function blockRoutes (app: FastifyInstance, options: RouteOptions): Promise<void> {
  const { blockstore, pins, leases } = options.components

  rpc<{ arg?: string[] }>(app, '/get', {
    querystring: query({ arg: q.args })
  }, async (request, reply) => {
    const [arg] = args(request.query, { min: 1, max: 1, name: 'cid' }) as [string]
    const { cid } = parseIpfsPath(arg)
    const bytes = await readBlock(blockstore, cid, { signal: requestSignal(request, reply) })
    return reply.type('application/octet-stream').header('x-stream-output', '1').send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))
  })

  rpc<{ arg?: string[] }>(app, '/stat', {
    querystring: query({ arg: q.args }),
    response: keySizeResponse
  }, async (request) => {
    const [arg] = args(request.query, { min: 1, max: 1, name: 'cid' }) as [string]
    const { cid } = parseIpfsPath(arg)
    const size = await blockstore.size(cid)
    if (size == null) {
      throw new BlockMissingError(cid)
    }
    return { Key: cid.toString(), Size: size }
  })

  rpc<PutQuery>(app, '/put', {
    querystring: query({ 'cid-codec': q.str, format: q.str, mhtype: q.str, mhlen: { type: 'integer' }, pin: q.bool, 'allow-big-block': q.bool }),
    response: keySizeResponse
  }, async (request, reply) => {
    const qs = request.query
    let codecName = qs['cid-codec'] ?? 'raw'
    let legacyV0 = false
    if (qs['cid-codec'] == null && qs.format != null) {
      const mapped = LEGACY_FORMATS[qs.format]
      if (mapped == null) throw new InvalidArgumentError(`unknown block format "${qs.format}"`)
      codecName = mapped
      legacyV0 = mapped === 'dag-pb'
    }
    const codec = CODECS[codecName]
    if (codec == null) {
      throw new InvalidArgumentError(`unsupported cid-codec "${codecName}": use one of ${Object.keys(CODECS).join(', ')}`)
    }
    const mhtype = qs.mhtype ?? 'sha2-256'
    const hasher = HASHERS[mhtype]
    if (hasher == null) {
      throw new InvalidArgumentError(`unsupported mhtype "${mhtype}": use one of ${Object.keys(HASHERS).join(', ')}`)
    }
    if (!request.isMultipart()) throw new MissingUploadError()
    const bytes = await readSingleUpload(request, MAX_BLOCK_BYTES, () => new UploadedBlockTooLargeError(MAX_BLOCK_BYTES))
    if (bytes == null) throw new MissingUploadError()
    try {
      codec.decode(bytes)
    } catch (err: any) {
      throw new InvalidBlockError(`block does not decode as ${codecName}: ${String(err?.message ?? err)}`, { cause: err })
    }
    const digest = await hasher.digest(bytes)
    const cid = legacyV0 && hasher === sha256 ? CID.createV0(digest as any) : CID.createV1(codec.code, digest)
    const signal = requestSignal(request, reply)
    const lease = leases.open()
    try {
      lease.add(cid)
      await blockstore.put(cid, bytes, { signal })
      if (qs.pin === true) {
        await pins.add(cid, { recursive: true, signal })
      } else {
        await blockstore.sync({ signal })
      }
    } finally {
      lease.close()
    }
    options.components.autoGc?.poke()
    return { Key: cid.toString(), Size: bytes.byteLength }
  })
}
