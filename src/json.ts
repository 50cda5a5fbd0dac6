/** True for a JSON object (not null, not an array): the shape of every request body and file we read. */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/**
 * `value` as JSON text, or undefined when it is nested too deep for JSON.stringify, which recurses
 * once a level where JSON.parse reads values nested far deeper: the caller refuses it as bad input
 * naming its field (a stack overflow would be answered 500).
 */
export function jsonText(value: unknown): string | undefined {
  try {
    return JSON.stringify(value)
  } catch (err) {
    if (err instanceof RangeError) return undefined
    throw err
  }
}
