/**
 * A binary min-heap whose elements know their own position (`heapIndex`), as beanstalkd's heap does
 * with its `setpos` callback. That is what lets a job be removed from the middle of a lane — a
 * cancelled, leased or deleted job — in O(log n) instead of a linear search.
 *
 * An element may sit in at most one IndexedHeap at a time; `heapIndex` is -1 while it is in none.
 */
export interface HeapItem {
  heapIndex: number
}

export class IndexedHeap<T extends HeapItem> {
  private readonly items: T[] = []

  /** `before(a, b)` is true when `a` must come out before `b`. */
  constructor(private readonly before: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length
  }

  peek(): T | undefined {
    return this.items[0]
  }

  push(item: T): void {
    item.heapIndex = this.items.length
    this.items.push(item)
    this.siftUp(item.heapIndex)
  }

  pop(): T | undefined {
    const top = this.items[0]
    if (top !== undefined) this.removeAt(0)
    return top
  }

  /** Removes `item` if it is in this heap; O(log n). Returns whether it was there. */
  remove(item: T): boolean {
    const i = item.heapIndex
    if (i < 0 || this.items[i] !== item) return false
    this.removeAt(i)
    return true
  }

  /** A copy of the elements, in heap order. */
  copy(): T[] {
    return this.items.slice()
  }

  private removeAt(i: number): void {
    const removed = this.items[i]!
    const last = this.items.pop()!
    removed.heapIndex = -1
    if (i === this.items.length) return
    this.place(last, i)
    // The element moved into the hole may belong above or below it.
    this.siftDown(this.siftUp(i))
  }

  private place(item: T, i: number): void {
    this.items[i] = item
    item.heapIndex = i
  }

  private siftUp(i: number): number {
    const item = this.items[i]!
    while (i > 0) {
      const parentIndex = (i - 1) >> 1
      const parent = this.items[parentIndex]!
      if (!this.before(item, parent)) break
      this.place(parent, i)
      i = parentIndex
    }
    this.place(item, i)
    return i
  }

  private siftDown(i: number): void {
    const n = this.items.length
    const item = this.items[i]!
    for (;;) {
      const left = 2 * i + 1
      if (left >= n) break
      const right = left + 1
      let child = left
      if (right < n && this.before(this.items[right]!, this.items[left]!)) child = right
      if (!this.before(this.items[child]!, item)) break
      this.place(this.items[child]!, i)
      i = child
    }
    this.place(item, i)
  }
}

