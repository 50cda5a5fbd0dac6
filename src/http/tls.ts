import { readFileSync } from 'node:fs'
import { createSecureContext } from 'node:tls'

/** The certificate and key HTTPS is served with (PEM files). */
export interface TlsFiles {
  cert: string
  key: string
}

/** The configured files, when HTTPS is on (resolveConfig makes sure both or neither are set). */
export function tlsFiles(config: { tls_cert: string | undefined; tls_key: string | undefined }): TlsFiles | undefined {
  return config.tls_cert === undefined || config.tls_key === undefined ? undefined : { cert: config.tls_cert, key: config.tls_key }
}

/**
 * Checks the files before the daemon serves with them: uWebSockets.js would take unreadable or
 * mismatched files without a word and then fail every handshake. Throws an Error naming the
 * setting, the file and the fix.
 */
export function checkTlsFiles({ cert, key }: TlsFiles): void {
  const read = (file: string, setting: string): Buffer => {
    try {
      return readFileSync(file)
    } catch (err) {
      throw new Error(`${setting}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give a readable PEM file`)
    }
  }
  const certPem = read(cert, 'tls_cert')
  const keyPem = read(key, 'tls_key')
  try {
    createSecureContext({ cert: certPem, key: keyPem })
  } catch (err) {
    throw new Error(`tls_cert ${cert} and tls_key ${key} cannot serve HTTPS (${(err as Error).message}): give a PEM certificate and its own private key`)
  }
}
