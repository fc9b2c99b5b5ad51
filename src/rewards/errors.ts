import { PinboxError } from '../errors.ts'

/** A segment index at or past the commitment's segment count (or not a whole number). */
export class SegmentOutOfRangeError extends PinboxError {
  static readonly code = 'ERR_SEGMENT_OUT_OF_RANGE'

  constructor (message = 'Segment index is out of range', options?: ErrorOptions) {
    super(SegmentOutOfRangeError.code, message, options)
  }
}

/**
 * The committed bytes S are empty (a DAG of identity blocks only): there is no segment to
 * challenge, so no commitment exists rather than a made-up root.
 */
export class EmptyCommitmentError extends PinboxError {
  static readonly code = 'ERR_EMPTY_COMMITMENT'

  constructor (message = 'Content has no bytes to commit to', options?: ErrorOptions) {
    super(EmptyCommitmentError.code, message, options)
  }
}

/** Content whose recomputed commitment differs from the one a deal names: refuse the deal. */
export class CommitmentMismatchError extends PinboxError {
  static readonly code = 'ERR_COMMITMENT_MISMATCH'

  constructor (message = 'Content does not match the deal commitment', options?: ErrorOptions) {
    super(CommitmentMismatchError.code, message, options)
  }
}

/** The RPC endpoint serves another chain than the config names. */
export class ChainIdMismatchError extends PinboxError {
  static readonly code = 'ERR_CHAIN_ID_MISMATCH'

  constructor (message = 'The RPC endpoint serves another chain than the configured chain id', options?: ErrorOptions) {
    super(ChainIdMismatchError.code, message, options)
  }
}

/** A configured contract address holds no code, or not the contract expected there. */
export class ContractNotFoundError extends PinboxError {
  static readonly code = 'ERR_CONTRACT_NOT_FOUND'

  constructor (message = 'No pinbox contract at the configured address', options?: ErrorOptions) {
    super(ContractNotFoundError.code, message, options)
  }
}

/** The RPC endpoint does not answer (down, refused, timed out). */
export class ChainUnavailableError extends PinboxError {
  static readonly code = 'ERR_CHAIN_UNAVAILABLE'

  constructor (message = 'The chain RPC endpoint does not answer', options?: ErrorOptions) {
    super(ChainUnavailableError.code, message, options)
  }
}

/** No chain section (rpcUrl, chainId, storage, token) in the config. */
export class ChainNotConfiguredError extends PinboxError {
  static readonly code = 'ERR_CHAIN_NOT_CONFIGURED'

  constructor (message = 'No chain is configured: run `pinbox chain dev` or set chain.rpcUrl, chain.chainId, chain.storage and chain.token', options?: ErrorOptions) {
    super(ChainNotConfiguredError.code, message, options)
  }
}

/** A chain call reverted; `reason` is the contract's custom error name when it decodes. */
export class ChainRevertError extends PinboxError {
  static readonly code = 'ERR_CHAIN_REVERT'
  readonly reason?: string

  constructor (message = 'The chain refused the transaction', reason?: string, options?: ErrorOptions) {
    super(ChainRevertError.code, message, options)
    if (reason != null) this.reason = reason
  }
}

export class WalletNotFoundError extends PinboxError {
  static readonly code = 'ERR_WALLET_NOT_FOUND'

  constructor (message = 'No wallet keystore: run `pinbox wallet create`', options?: ErrorOptions) {
    super(WalletNotFoundError.code, message, options)
  }
}

export class WalletExistsError extends PinboxError {
  static readonly code = 'ERR_WALLET_EXISTS'

  constructor (message = 'A wallet keystore already exists', options?: ErrorOptions) {
    super(WalletExistsError.code, message, options)
  }
}

/** The keystore does not decrypt with the password given (or is not a keystore). */
export class WrongPasswordError extends PinboxError {
  static readonly code = 'ERR_WRONG_PASSWORD'

  constructor (message = 'Wrong wallet password', options?: ErrorOptions) {
    super(WrongPasswordError.code, message, options)
  }
}

/** No password source: no --password-file, no PINBOX_WALLET_PASSWORD and no terminal to ask on. */
export class NoPasswordError extends PinboxError {
  static readonly code = 'ERR_NO_PASSWORD'

  constructor (message = 'No wallet password: pass --password-file, set PINBOX_WALLET_PASSWORD or run on a terminal', options?: ErrorOptions) {
    super(NoPasswordError.code, message, options)
  }
}

export class InvalidPrivateKeyError extends PinboxError {
  static readonly code = 'ERR_INVALID_PRIVATE_KEY'

  constructor (message = 'Not a private key (expected 0x and 64 hex digits)', options?: ErrorOptions) {
    super(InvalidPrivateKeyError.code, message, options)
  }
}

/** A key the operation needs is not unlocked (yet, or at all). */
export class WalletLockedError extends PinboxError {
  static readonly code = 'ERR_WALLET_LOCKED'

  constructor (message = 'The wallet key is not unlocked', options?: ErrorOptions) {
    super(WalletLockedError.code, message, options)
  }
}

/** The rewards service is off (no chain) or not ready. */
export class RewardsUnavailableError extends PinboxError {
  static readonly code = 'ERR_REWARDS_UNAVAILABLE'

  constructor (message = 'Rewards are not available on this node', options?: ErrorOptions) {
    super(RewardsUnavailableError.code, message, options)
  }
}

export class DealNotFoundError extends PinboxError {
  static readonly code = 'ERR_DEAL_NOT_FOUND'

  constructor (message = 'No such deal', options?: ErrorOptions) {
    super(DealNotFoundError.code, message, options)
  }
}
