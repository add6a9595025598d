/**
 * Runs `work` over items with at most `limit` in flight and settles every item: returns the ones whose work
 * threw, with their errors, so the caller decides between retrying and failing.
 */
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<{ item: T; error: unknown }[]> {
  const failed: { item: T; error: unknown }[] = [];
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (error) {
        failed.push({ item, error });
      }
    }
  });
  await Promise.all(lanes);
  return failed;
}

/** Like forEachLimited, but the first failure is thrown: for reads, where a partial answer is no answer. */
export async function allLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  const failed = await forEachLimited(items, limit, work);
  if (failed.length > 0) throw failed[0]!.error;
}

/** At most `limit` tasks at once across every caller: for a client shared by concurrent reads. */
export class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active += 1;
    try {
      return await task();
    } finally {
      this.active -= 1;
      this.waiting.shift()?.();
    }
  }
}
