/** True for a JSON object (not null, not an array): the shape of every request body and file we read. */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
