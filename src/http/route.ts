import type { HttpRequest, HttpResponse } from 'uWebSockets.js'
import type { Logger } from '../log'
import { Exchange } from './exchange'

export type RouteHandler = (ex: Exchange, res: HttpResponse, req: HttpRequest) => void

/**
 * The uWS handler for one route: it makes the request's Exchange and keeps any exception from
 * reaching uWS, where it would end the process (`Exchange.fault` logs it with the URL and answers
 * 500). `url` names the request in logs; without one (the catch-all route) the actual URL does.
 */
export function uwsHandler(url: string | undefined, logger: Logger, handler: RouteHandler): (res: HttpResponse, req: HttpRequest) => void {
  return (res, req) => {
    const ex = new Exchange(res, url ?? req.getUrl(), logger)
    try {
      handler(ex, res, req)
    } catch (err) {
      ex.fault(err)
    }
  }
}
