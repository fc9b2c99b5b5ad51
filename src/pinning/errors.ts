import { PinboxError } from '../errors.ts'

export class NotPinnedError extends PinboxError {
  static readonly code = 'ERR_NOT_PINNED'

  constructor (message = 'not pinned or pinned indirectly', options?: ErrorOptions) {
    super(NotPinnedError.code, message, options)
  }
}

export class PinnedRecursivelyError extends PinboxError {
  static readonly code = 'ERR_PINNED_RECURSIVELY'

  constructor (message = 'pinned recursively', options?: ErrorOptions) {
    super(PinnedRecursivelyError.code, message, options)
  }
}


export class PinManagerStoppedError extends PinboxError {
  static readonly code = 'ERR_PIN_MANAGER_STOPPED'

  constructor (message = 'pin manager is stopped', options?: ErrorOptions) {
    super(PinManagerStoppedError.code, message, options)
  }
}

/** A pool member refused a request; `reason` is the protocol's machine-readable refusal. */
export class PoolRequestRefusedError extends PinboxError {
  static readonly code = 'ERR_POOL_REFUSED'
  readonly reason: string

  constructor (reason: string, message = `refused by the pool member: ${reason}`, options?: ErrorOptions) {
    super(PoolRequestRefusedError.code, message, options)
    this.reason = reason
  }
}

/** A pool peer broke the protocol: a malformed or oversized message, a bad receipt. */
export class PoolProtocolError extends PinboxError {
  static readonly code = 'ERR_POOL_PROTOCOL'

  constructor (message = 'pool protocol violation', options?: ErrorOptions) {
    super(PoolProtocolError.code, message, options)
  }
}

/** A DAG transfer sent more bytes than the size it was announced with. */
export class TransferTooLargeError extends PinboxError {
  static readonly code = 'ERR_TRANSFER_TOO_LARGE'

  constructor (limit: number, message = `the transfer exceeded its announced size of ${limit} bytes`, options?: ErrorOptions) {
    super(TransferTooLargeError.code, message, options)
  }
}

/** A DAG transfer ended without every block of the requested DAGs. */
export class TransferIncompleteError extends PinboxError {
  static readonly code = 'ERR_TRANSFER_INCOMPLETE'

  constructor (message = 'the transfer ended before the DAG was complete', options?: ErrorOptions) {
    super(TransferIncompleteError.code, message, options)
  }
}

export class NotReplicatedError extends PinboxError {
  static readonly code = 'ERR_NOT_REPLICATED'

  constructor (message = 'no replicated pin for this CID', options?: ErrorOptions) {
    super(NotReplicatedError.code, message, options)
  }
}

export class ReplicationUnavailableError extends PinboxError {
  static readonly code = 'ERR_REPLICATION_UNAVAILABLE'

  constructor (message = 'replication needs a pool: set pool.members', options?: ErrorOptions) {
    super(ReplicationUnavailableError.code, message, options)
  }
}
