import { arch, platform } from 'node:os'
import pkg from '../../../package.json' with { type: 'json' }
import { args } from '../args.ts'
import { NotSupportedError } from '../errors.ts'
import { q, query, rpc } from './rpc.ts'
import type { RouteOptions } from '../server.ts'
import type { FastifyInstance } from 'fastify'

const idResponse = {
  200: {
    type: 'object',
    properties: {
      ID: { type: 'string' },
      PublicKey: { type: 'string' },
      Addresses: { type: 'array', items: { type: 'string' } },
      AgentVersion: { type: 'string' },
      Protocols: { type: 'array', items: { type: 'string' } }
    }
  }
} as const

const versionResponse = {
  200: {
    type: 'object',
    properties: {
      Version: { type: 'string' },
      Commit: { type: 'string' },
      Repo: { type: 'string' },
      System: { type: 'string' },
      Golang: { type: 'string' }
    }
  }
} as const


export async function nodeRoutes (app: FastifyInstance, options: RouteOptions): Promise<void> {
  const { network, repo } = options.components

  rpc<{ arg?: string[] }>(app, '/id', {
    querystring: query({ arg: q.args, format: q.str }),
    response: idResponse
  }, async (request) => {
    const [peer] = args(request.query, { max: 1, name: 'peerid' })
    const self = network.peerId()
    if (peer != null && peer !== self) {
      throw new NotSupportedError('looking up other peers is not supported; omit the peer id')
    }
    return {
      ID: self,
      PublicKey: network.publicKey(),
      Addresses: network.addresses(),
      AgentVersion: network.agentVersion,
      Protocols: network.protocols?.() ?? []
    }
  })

  rpc(app, '/version', {
    querystring: query({ number: q.bool, commit: q.bool, repo: q.bool, all: q.bool }),
    response: versionResponse
  }, async () => ({
    Version: pkg.version,
    Commit: '',
    Repo: String(repo.version ?? 1),
    System: `${arch()}/${platform()}`,
    Golang: `node ${process.version}`
  }))
}
