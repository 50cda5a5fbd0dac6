/**
 * "Did you mean" for a mistyped name. Distance is Damerau-Levenshtein (optimal string alignment:
 * insert, delete, substitute, or swap two neighbours), and a name is suggested as commander
 * suggests flags: at most 3 edits away, with more than 40 % of the longer name left unchanged, so
 * "retry" finds "retries" but "key" does not find "max".
 */

const MAX_EDITS = 3
const MIN_SIMILARITY = 0.4

export function editDistance(a: string, b: string): number {
  // Rows of the classic table: two back for the swap, one back, and the one being filled.
  let before = new Array<number>(b.length + 1).fill(0)
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let best = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, before[j - 2]! + 1)
      row.push(best)
    }
    before = previous
    previous = row
  }
  return previous[b.length]!
}

/** The known name closest to `word`, if one is close enough to be a likely typo of it. */
export function closest(word: string, known: Iterable<string>): string | undefined {
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of known) {
    const distance = editDistance(word, candidate)
    const length = Math.max(word.length, candidate.length)
    if (distance > MAX_EDITS || (length - distance) / length <= MIN_SIMILARITY) continue
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  return best
}

/**
 * The message for the first key of `block` that is not `known`, or undefined when all are:
 * `unknown setting "lanes.thumbs.concurency" (did you mean "concurrency"?)`. `at` is the path of
 * the block ("" at the top level). When nothing is close, `hint` is said instead, or a small block
 * lists what it takes.
 */
export function unknownKey(block: Record<string, unknown>, known: readonly string[], at: string, hint?: string): string | undefined {
  const key = Object.keys(block).find((k) => !known.includes(k))
  if (key === undefined) return undefined
  const name = at === '' ? key : `${at}.${key}`
  const near = closest(key, known)
  if (near !== undefined) return `unknown setting ${JSON.stringify(name)} (did you mean ${JSON.stringify(near)}?)`
  if (hint !== undefined) return `unknown setting ${JSON.stringify(name)} (${hint})`
  if (known.length <= 16) return `unknown setting ${JSON.stringify(name)} (${at === '' ? 'known settings' : `"${at}" takes`}: ${known.join(', ')})`
  return `unknown setting ${JSON.stringify(name)}`
}
