import type { Command } from 'commander'
import { action } from '../command.ts'
import type { Runtime } from '../command.ts'
import type { CliIO } from '../context.ts'
import { InvalidArgumentError } from '../errors.ts'
import { example } from '../help.ts'
import { output } from '../printer.ts'

const ROLES = ['owner', 'operator'] as const
type Role = typeof ROLES[number]

export interface WalletAddressesResult {
  owner?: string
  operator?: string
}

export interface WalletBalance {
  address: string
  eth: string
  token: string
}

/** Reads a line from the terminal without echoing it. */
export async function promptHidden (io: CliIO, question: string): Promise<string> {
  const { createInterface } = await import('node:readline')
  const rl = createInterface({ input: io.stdin as NodeJS.ReadableStream, output: io.stderr as NodeJS.WritableStream, terminal: true })
  // echo nothing the user types after the question
  const out = rl as unknown as { _writeToOutput: (s: string) => void }
  let asked = false
  out._writeToOutput = (s: string) => {
    if (!asked) {
      io.stderr.write(s)
      asked = true
    }
  }
  try {
    return await new Promise<string>((resolve) => { rl.question(question, resolve) })
  } finally {
    rl.close()
    io.stderr.write('\n')
  }
}

async function password (io: CliIO, passwordFile: string | undefined, confirm: boolean): Promise<string> {
  const { resolvePassword } = await import('../../rewards/wallet.ts')
  const tty = io.stdin.isTTY === true
  return await resolvePassword({
    ...(passwordFile == null ? {} : { passwordFile }),
    env: io.env,
    ...(tty
      ? {
          prompt: async () => {
            const first = await promptHidden(io, 'wallet password: ')
            if (confirm && first !== await promptHidden(io, 'repeat the password: ')) throw new InvalidArgumentError('the passwords differ')
            return first
          }
        }
      : {})
  })
}

async function readStdin (io: CliIO): Promise<string> {
  let text = ''
  for await (const chunk of io.stdin) text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8')
  return text
}

function addressLines (d: WalletAddressesResult): string[] {
  return ROLES.map((r) => `${r.padEnd(8)} ${d[r] ?? '(none)'}`)
}

export function registerWallet (program: Command, rt: Runtime): void {
  const wallet = program.command('wallet')
    .description('the node\'s owner and operator keys, in encrypted keystores in the repo')
  example(wallet, 'pinbox wallet create', 'pinbox wallet show')

  const create = wallet.command('create')
    .description('create new owner and operator keys (password from --password-file, $PINBOX_WALLET_PASSWORD or a prompt)')
    .option('--role <role>', 'only this key: owner | operator')
    .option('--password-file <file>', 'read the keystore password from the first line of this file')
    .action(action(rt, async (ctx, c) => {
      const opts = c.opts<{ role?: string, passwordFile?: string }>()
      if (opts.role != null && !(ROLES as readonly string[]).includes(opts.role)) throw new InvalidArgumentError(`unknown role "${opts.role}" (use owner or operator)`)
      const { createWallets } = await import('../../rewards/wallet.ts')
      const pw = await password(ctx.io, opts.passwordFile, true)
      const scryptN = ctx.io.env.PINBOX_TEST_SCRYPT_N
      const res = await createWallets(ctx.repoPath, pw, opts.role == null ? ROLES : [opts.role as Role],
        scryptN == null ? {} : { scryptN: Number(scryptN) })
      return output<WalletAddressesResult>(res, (d) => [...addressLines(d), 'keystores written to the repo\'s keystore/ folder (mode 0600)'])
    }))
  example(create, 'pinbox wallet create', 'pinbox wallet create --password-file ~/.pinbox-pass', 'PINBOX_WALLET_PASSWORD=… pinbox wallet create --role operator')

  const imp = wallet.command('import')
    .description('store an existing private key as the owner or operator key (read from --key-file or stdin, never from the command line)')
    .argument('<role>', 'owner | operator')
    .option('--key-file <file>', 'file holding the private key (0x + 64 hex digits)')
    .option('--password-file <file>', 'read the keystore password from the first line of this file')
    .action(action(rt, async (ctx, c) => {
      const [role] = c.processedArgs as [string]
      if (!(ROLES as readonly string[]).includes(role)) throw new InvalidArgumentError(`unknown role "${role}" (use owner or operator)`)
      const opts = c.opts<{ keyFile?: string, passwordFile?: string }>()
      const { importWallet } = await import('../../rewards/wallet.ts')
      const { readFile } = await import('node:fs/promises')
      const key = opts.keyFile != null ? await readFile(opts.keyFile, 'utf8') : await readStdin(ctx.io)
      const pw = await password(ctx.io, opts.passwordFile, false)
      const scryptN = ctx.io.env.PINBOX_TEST_SCRYPT_N
      const address = await importWallet(ctx.repoPath, role as Role, key, pw, scryptN == null ? {} : { scryptN: Number(scryptN) })
      return output({ role, address }, (d) => `imported the ${d.role} key ${d.address}`)
    }))
  example(imp, 'pinbox wallet import operator --key-file ./op.key', 'cat owner.key | pinbox wallet import owner')

  const show = wallet.command('show')
    .description('print the owner and operator addresses (never the keys)')
    .action(action(rt, async (ctx) => {
      const { walletAddresses } = await import('../../rewards/wallet.ts')
      return output<WalletAddressesResult>(await walletAddresses(ctx.repoPath), addressLines)
    }))
  example(show, 'pinbox wallet show', 'pinbox --json wallet show')

  const balance = wallet.command('balance')
    .description('gas (ETH) and token balances of the owner and operator keys, through the daemon')
    .action(action(rt, async (ctx) => {
      const res = await (await ctx.api()).call<{ owner?: WalletBalance, operator?: WalletBalance }>('wallet/balance')
      return output(res, (d) => ROLES.map((r) => {
        const b = d[r]
        return b == null ? `${r.padEnd(8)} (locked or none)` : `${r.padEnd(8)} ${b.address} ${b.eth} ETH ${b.token} PIN`
      }))
    }))
  example(balance, 'pinbox wallet balance', 'pinbox --json wallet balance')
}
