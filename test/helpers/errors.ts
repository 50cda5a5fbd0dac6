import { ApiError, type CodeName } from '../../src/errors'

/** The code name of the ApiError `action` throws, or undefined when it throws nothing (other errors pass through). */
export function codeOf(action: () => unknown): CodeName | undefined {
  try {
    action()
  } catch (err) {
    if (err instanceof ApiError) return err.codeName
    throw err
  }
  return undefined
}
