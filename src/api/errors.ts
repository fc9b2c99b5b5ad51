import { PinboxError } from '../errors.ts'

export class UnauthorizedError extends PinboxError {
  constructor (message = 'missing or invalid bearer token') {
    super('ERR_UNAUTHORIZED', message)
  }
}

export class MethodNotAllowedError extends PinboxError {
  constructor (message = 'method not allowed: the RPC API accepts POST only') {
    super('ERR_METHOD_NOT_ALLOWED', message)
  }
}

export class RouteNotFoundError extends PinboxError {
  constructor (message = '404 page not found') {
    super('ERR_ROUTE_NOT_FOUND', message)
  }
}

export class InvalidArgumentError extends PinboxError {
  constructor (message = 'invalid argument') {
    super('ERR_INVALID_ARGUMENT', message)
  }
}

export class BodyTooLargeError extends PinboxError {
  constructor (message = 'request body too large') {
    super('ERR_BODY_TOO_LARGE', message)
  }
}

/** Same code as the content layer's, raised before the block's CID is known. */
export class UploadedBlockTooLargeError extends PinboxError {
  constructor (max: number, message = `block too large: the limit is ${max} bytes`) {
    super('ERR_BLOCK_TOO_LARGE', message)
  }
}

export class InvalidBlockError extends PinboxError {
  constructor (message = 'block does not decode with its codec', options?: ErrorOptions) {
    super('ERR_INVALID_BLOCK', message, options)
  }
}

export class MissingUploadError extends PinboxError {
  constructor (message = 'no file was uploaded: expected a multipart/form-data body with a file part') {
    super('ERR_MISSING_UPLOAD', message)
  }
}

export class NotSupportedError extends PinboxError {
  constructor (message = 'not supported') {
    super('ERR_NOT_SUPPORTED', message)
  }
}

/**
 * One HTTP status per error code, from every layer the API calls into. Codes not listed fall
 * back to prefix rules (`ERR_CAR_*` are bad uploads) and then to 500.
 */
export const STATUS_BY_CODE: Readonly<Record<string, number>> = {
  // api
  ERR_UNAUTHORIZED: 401,
  ERR_METHOD_NOT_ALLOWED: 405,
  ERR_ROUTE_NOT_FOUND: 404,
  ERR_INVALID_ARGUMENT: 400,
  ERR_BODY_TOO_LARGE: 413,
  ERR_BLOCK_TOO_LARGE: 400,
  ERR_MISSING_UPLOAD: 400,
  ERR_NOT_SUPPORTED: 501,
  ERR_LOCAL_FILE_REFUSED: 403,
  // content / store: bad input
  ERR_INVALID_CID: 400,
  ERR_INVALID_PATH: 400,
  ERR_INVALID_CHUNKER: 400,
  ERR_UNKNOWN_PROFILE: 400,
  ERR_IS_DIRECTORY: 400,
  ERR_INVALID_OPTIONS: 400,
  ERR_INVALID_BLOCK: 400,
  ERR_INVALID_MULTIADDR: 400,
  ERR_UNDIALABLE_ADDRESS: 400,
  ERR_BLOCK_HASH_MISMATCH: 400,
  ERR_UNSUPPORTED_CODEC: 400,
  ERR_UNSUPPORTED_HASH: 400,
  ERR_NOT_A_FILE: 400,
  ERR_NOT_A_DIRECTORY: 400,
  ERR_NOT_UNIXFS: 400,
  ERR_UNSAFE_PATH: 422,
  ERR_INVALID_RANGE: 416,
  // content / store: missing things
  ERR_PATH_NOT_FOUND: 404,
  ERR_NOT_FOUND: 404,
  ERR_BLOCK_MISSING: 404,
  ERR_BLOCK_NOT_FOUND: 404,
  ERR_NOT_PINNED: 404,
  ERR_PEER_NOT_CONNECTED: 404,
  // store: capacity
  ERR_QUOTA_EXCEEDED: 507,
  ERR_DISK_FULL: 507,
  // pinning
  ERR_ALREADY_PINNED: 409,
  ERR_PINNED_INDIRECTLY: 409,
  ERR_PINNED_RECURSIVELY: 409,
  ERR_NOT_REPLICATED: 404,
  ERR_REPLICATION_UNAVAILABLE: 400,
  // stopping or stopped services
  ERR_STORE_CLOSED: 503,
  ERR_PIN_MANAGER_STOPPED: 503,
  // aborted by the caller or a deadline
  ERR_TIMEOUT: 504,
  ERR_DIAL_FAILED: 502,
  ERR_BLOCK_FETCH_FAILED: 502,
  ABORT_ERR: 499,
  // rewards
  ERR_SEGMENT_OUT_OF_RANGE: 400,
  ERR_EMPTY_COMMITMENT: 400,
  ERR_COMMITMENT_MISMATCH: 409,
  ERR_DEAL_NOT_FOUND: 404,
  ERR_CHAIN_REVERT: 409,
  ERR_WALLET_LOCKED: 503,
  ERR_REWARDS_UNAVAILABLE: 503,
  ERR_CHAIN_NOT_CONFIGURED: 503,
  ERR_CHAIN_UNAVAILABLE: 503,
  // fastify and its plugins
  FST_ERR_CTP_BODY_TOO_LARGE: 413,
  FST_REQ_FILE_TOO_LARGE: 413,
  FST_PARTS_LIMIT: 413,
  FST_FILES_LIMIT: 413,
  FST_FIELDS_LIMIT: 413,
  FST_ERR_VALIDATION: 400,
  FST_INVALID_MULTIPART_CONTENT_TYPE: 400,
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 415,
  FST_ERR_CTP_EMPTY_JSON_BODY: 400,
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 400,
  FST_PROTO_VIOLATION: 400
}

/** Error names (not codes) that dependencies throw, e.g. interface-store's NotFoundError. */
const STATUS_BY_NAME: Readonly<Record<string, number>> = {
  NotFoundError: 404,
  AbortError: 499,
  TimeoutError: 504
}

/** Kubo's error body, from go-ipfs-cmds. */
export interface KuboErrorBody {
  Message: string
  /** go-ipfs-cmds ErrorType: 0 normal, 1 client, 3 not found. */
  Code: number
  Type: 'error'
  /** pinbox's typed error code (`ERR_…`), for clients that act on it; Kubo's clients ignore it. */
  code?: string
}

export interface MappedError {
  status: number
  body: KuboErrorBody
  /** True when the error is ours to explain; false for bugs, which are logged, not shown. */
  expected: boolean
}

export function statusOf (err: unknown): number | undefined {
  const e = err as { code?: unknown, name?: unknown, statusCode?: unknown } | null
  if (e == null || typeof e !== 'object') return undefined
  if (typeof e.code === 'string') {
    const byCode = STATUS_BY_CODE[e.code]
    if (byCode != null) return byCode
    if (e.code.startsWith('ERR_CAR_')) return 400
  }
  if (typeof e.name === 'string') {
    const byName = STATUS_BY_NAME[e.name]
    if (byName != null) return byName
  }
  // fastify's own errors carry a status; trust it only for client errors
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) return e.statusCode
  return undefined
}

export function toKuboError (err: unknown): MappedError {
  const mapped = statusOf(err)
  // a PinboxError's message is written for users; anything else may carry internals
  if (!(err instanceof PinboxError) && (mapped == null || mapped >= 500)) {
    return { status: mapped ?? 500, body: { Message: 'internal error', Code: 0, Type: 'error' }, expected: false }
  }
  const status = mapped ?? 500
  const message = err instanceof Error && err.message !== '' ? err.message : String(status)
  let code = 0
  if (status === 404) code = 3
  else if (status >= 400 && status < 500) code = 1
  const typed = err instanceof PinboxError ? { code: err.code } : {}
  return { status, body: { Message: message, Code: code, Type: 'error', ...typed }, expected: mapped != null }
}
