import { type Server, type Socket, connect, createServer } from 'node:net'

/**
 * A TCP proxy in front of a server (a real redis-server) whose replies can be held back: commands
 * still reach the server and run there, but their answers stay in the proxy until `release`. So a
 * test makes "the command ran, its reply was lost in a timeout" happen exactly, with no sleeps.
 */
export interface TcpProxy {
  readonly port: number
  /** From now on, what the server sends is kept here (every connection). */
  hold(): void
  /** Sends everything kept, and lets replies through again. */
  release(): void
  close(): Promise<void>
}

export async function startTcpProxy(upstreamPort: number): Promise<TcpProxy> {
  let holding = false
  const held: { to: Socket; data: Buffer }[] = []
  const sockets = new Set<Socket>()
  const server: Server = createServer((client) => {
    const upstream = connect(upstreamPort, '127.0.0.1')
    sockets.add(client).add(upstream)
    client.on('data', (data) => upstream.write(data))
    upstream.on('data', (data) => {
      if (holding) held.push({ to: client, data })
      else client.write(data)
    })
    const end = (): void => {
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    client.on('close', end).on('error', end)
    upstream.on('close', end).on('error', end)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as { port: number }).port,
    hold: () => (holding = true),
    release() {
      holding = false
      for (const { to, data } of held.splice(0)) if (!to.destroyed) to.write(data)
    },
    async close() {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
