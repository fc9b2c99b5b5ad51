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

/** Same code as the content layer's walker error, so callers match one code for both. */
export class PinBlockMissingError extends PinboxError {
  static readonly code = 'ERR_BLOCK_MISSING'

  constructor (message = 'block missing', options?: ErrorOptions) {
    super(PinBlockMissingError.code, message, options)
  }
}

export class PinManagerStoppedError extends PinboxError {
  static readonly code = 'ERR_PIN_MANAGER_STOPPED'

  constructor (message = 'pin manager is stopped', options?: ErrorOptions) {
    super(PinManagerStoppedError.code, message, options)
  }
}
