import { PinboxError } from '../errors.ts'

export class InvalidMultiaddrError extends PinboxError {
  static readonly code = 'ERR_INVALID_MULTIADDR'

  constructor (message = 'invalid multiaddr', options?: ErrorOptions) {
    super(InvalidMultiaddrError.code, message, options)
  }
}

/** A multiaddr that parses but cannot be dialled as given (no /p2p/ peer id, say). */
export class UndialableAddressError extends PinboxError {
  static readonly code = 'ERR_UNDIALABLE_ADDRESS'

  constructor (message = 'the address cannot be dialled', options?: ErrorOptions) {
    super(UndialableAddressError.code, message, options)
  }
}

export class DialFailedError extends PinboxError {
  static readonly code = 'ERR_DIAL_FAILED'

  constructor (message = 'could not connect to the peer', options?: ErrorOptions) {
    super(DialFailedError.code, message, options)
  }
}

export class PeerNotConnectedError extends PinboxError {
  static readonly code = 'ERR_PEER_NOT_CONNECTED'

  constructor (message = 'not connected to that peer', options?: ErrorOptions) {
    super(PeerNotConnectedError.code, message, options)
  }
}

export class ProviderStoppedError extends PinboxError {
  static readonly code = 'ERR_PROVIDER_STOPPED'

  constructor (message = 'the provider is stopped', options?: ErrorOptions) {
    super(ProviderStoppedError.code, message, options)
  }
}

export class ProvideFailedError extends PinboxError {
  static readonly code = 'ERR_PROVIDE_FAILED'

  constructor (message = 'no router took the provider record', options?: ErrorOptions) {
    super(ProvideFailedError.code, message, options)
  }
}

/** No peer delivered a block whose bytes hash to its CID (none found, all failed, or all lied). */
export class BlockFetchFailedError extends PinboxError {
  static readonly code = 'ERR_BLOCK_FETCH_FAILED'

  constructor (message = 'could not fetch a verified block from the network', options?: ErrorOptions) {
    super(BlockFetchFailedError.code, message, options)
  }
}

/** A network call came before the libp2p host and bitswap were started (or after they stopped). */
export class NetworkNotStartedError extends PinboxError {
  static readonly code = 'ERR_NETWORK_NOT_STARTED'

  constructor (message = 'the network is not started', options?: ErrorOptions) {
    super(NetworkNotStartedError.code, message, options)
  }
}
