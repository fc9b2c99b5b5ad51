import { PinboxError } from '../errors.ts'
import type { CID } from 'multiformats/cid'

export class InvalidChunkerError extends PinboxError {
  static readonly code = 'ERR_INVALID_CHUNKER'
  constructor (chunker: string, options?: ErrorOptions) {
    super(InvalidChunkerError.code, `Invalid chunker "${chunker}": expected "size-<bytes>" with 1 <= bytes <= 1048576`, options)
  }
}

export class UnknownProfileError extends PinboxError {
  static readonly code = 'ERR_UNKNOWN_PROFILE'
  constructor (profile: string) {
    super(UnknownProfileError.code, `Unknown import profile "${profile}"`)
  }
}

export class IsDirectoryError extends PinboxError {
  static readonly code = 'ERR_IS_DIRECTORY'
  constructor (path: string) {
    super(IsDirectoryError.code, `${path} is a directory; use recursive to add it`)
  }
}

export class NotFoundError extends PinboxError {
  static readonly code = 'ERR_NOT_FOUND'
  readonly path: string
  constructor (path: string, options?: ErrorOptions) {
    super(NotFoundError.code, `No such file or directory: ${path}`, options)
    this.path = path
  }
}

export class InvalidCidError extends PinboxError {
  static readonly code = 'ERR_INVALID_CID'
  constructor (value: string, options?: ErrorOptions) {
    super(InvalidCidError.code, `Invalid CID "${value}"`, options)
  }
}

export class PathNotFoundError extends PinboxError {
  static readonly code = 'ERR_PATH_NOT_FOUND'
  readonly path: string
  constructor (path: string, segment?: string, options?: ErrorOptions) {
    super(PathNotFoundError.code, segment == null ? `Path not found: ${path}` : `Path not found: no "${segment}" in ${path}`, options)
    this.path = path
  }
}

export class NotAFileError extends PinboxError {
  static readonly code = 'ERR_NOT_A_FILE'
  constructor (path: string) {
    super(NotAFileError.code, `${path} is not a file`)
  }
}

export class NotADirectoryError extends PinboxError {
  static readonly code = 'ERR_NOT_A_DIRECTORY'
  constructor (path: string) {
    super(NotADirectoryError.code, `${path} is not a directory`)
  }
}

export class BlockMissingError extends PinboxError {
  static readonly code = 'ERR_BLOCK_MISSING'
  readonly cid: CID
  constructor (cid: CID, options?: ErrorOptions) {
    super(BlockMissingError.code, `Block ${cid} is not in the local store`, options)
    this.cid = cid
  }
}

export class UnsupportedCodecError extends PinboxError {
  static readonly code = 'ERR_UNSUPPORTED_CODEC'
  readonly cid: CID
  constructor (cid: CID) {
    super(UnsupportedCodecError.code, `Block ${cid} has unsupported codec 0x${cid.code.toString(16)}`)
    this.cid = cid
  }
}

export class UnsupportedHashError extends PinboxError {
  static readonly code = 'ERR_UNSUPPORTED_HASH'
  readonly cid: CID
  constructor (cid: CID) {
    super(UnsupportedHashError.code, `Block ${cid} uses unsupported multihash 0x${cid.multihash.code.toString(16)}`)
    this.cid = cid
  }
}

export class BlockHashMismatchError extends PinboxError {
  static readonly code = 'ERR_BLOCK_HASH_MISMATCH'
  readonly cid: CID
  /** Blocks stored before the bad one; nothing after it was stored. */
  readonly blocksStored: number
  constructor (cid: CID, blocksStored: number) {
    super(BlockHashMismatchError.code, `Block ${cid} does not match its hash (${blocksStored} blocks before it were stored, none after)`)
    this.cid = cid
    this.blocksStored = blocksStored
  }
}

export class BlockTooLargeError extends PinboxError {
  static readonly code = 'ERR_BLOCK_TOO_LARGE'
  constructor (cid: CID, size: number, max: number) {
    super(BlockTooLargeError.code, `Block ${cid} is ${size} bytes, over the limit of ${max}`)
  }
}

export class CarTruncatedError extends PinboxError {
  static readonly code = 'ERR_CAR_TRUNCATED'
  readonly blocksStored: number
  constructor (blocksStored: number, options?: ErrorOptions) {
    super(CarTruncatedError.code, `CAR data ended in the middle of a block (${blocksStored} blocks before it were stored)`, options)
    this.blocksStored = blocksStored
  }
}

export class CarInvalidError extends PinboxError {
  static readonly code = 'ERR_CAR_INVALID'
  constructor (reason: string, options?: ErrorOptions) {
    super(CarInvalidError.code, `Not a valid CAR: ${reason}`, options)
  }
}

export class UnsafePathError extends PinboxError {
  static readonly code = 'ERR_UNSAFE_PATH'
  constructor (path: string, name: string) {
    super(UnsafePathError.code, `Refusing entry "${name}" at ${path}: not a safe file name`)
  }
}
