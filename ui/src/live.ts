import { type Overview, token } from './api'

/**
 * The live overview: a WebSocket to /ui/live that sends the token first, then gets one update a
 * second. Reconnects after a drop; `onUpdate` sees each update, `onState` whether it is connected.
 */
export function connectLive(onUpdate: (overview: Overview) => void, onState: (state: 'live' | 'connecting' | 'refused') => void): () => void {
  let socket: WebSocket | undefined
  let stopped = false
  let retry: number | undefined
  const open = (): void => {
    onState('connecting')
    socket = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ui/live`)
    socket.onopen = () => socket!.send(JSON.stringify({ token: token() }))
    socket.onmessage = (event) => {
      onState('live')
      onUpdate(JSON.parse(String(event.data)) as Overview)
    }
    socket.onclose = (event) => {
      if (stopped) return
      if (event.code === 4001) {
        onState('refused')
        return
      }
      onState('connecting')
      retry = window.setTimeout(open, 2000)
    }
  }
  open()
  return () => {
    stopped = true
    window.clearTimeout(retry)
    socket?.close()
  }
}
