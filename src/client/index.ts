/** The client module, importable as `dispenserd/client`. */
export { CODE, ConnectionError, DEFAULT_URL, DispenserdClient, DispenserdError, type ClientOptions, type ReceiveOptions } from './client'
export type * from './types'
