import type { HttpRequest, HttpResponse } from 'uWebSockets.js'
import type { Logger } from '../log'
import { ApiError } from '../errors'
import { Exchange } from './exchange'
import { bodiless, contentLength } from './framing'

export type RouteHandler = (ex: Exchange, res: HttpResponse, req: HttpRequest) => void

/**
 * The uWS handler for one route: it makes the request's Exchange, refuses a request whose body
 * cannot be delimited, and keeps any exception from reaching uWS, where it would end the process
 * (`Exchange.fault` logs it with the URL and answers 500). `url` names the request in logs;
 * without one (the catch-all route) the actual URL does.
 */
export function uwsHandler(url: string | undefined, logger: Logger, handler: RouteHandler): (res: HttpResponse, req: HttpRequest) => void {
  return (res, req) => {
    const ex = new Exchange(res, url ?? req.getUrl(), logger)
    ex.corked = true
    try {
      const declared = contentLength(req)
      if (typeof declared !== 'string') {
        // What follows on the connection cannot be told apart from the body: close it.
        ex.sendError(new ApiError('invalid_data', `Content-Length headers differ (${declared.map((v) => JSON.stringify(v)).join(', ')}): the body cannot be delimited`), true)
        return
      }
      ex.contentLength = declared
      ex.bodiless = bodiless()
      handler(ex, res, req)
    } catch (err) {
      ex.fault(err)
    } finally {
      ex.corked = false
    }
  }
}
