import { appendFileSync, closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';

/**
 * Rows of one day of a dimension on their way into the view store, held in a bounded amount of memory: they
 * are split by a hash of their value into `partitions` parts, kept in memory while they are few, and appended
 * to one file per part (under the function's /tmp) once they pass `memoryBytes`. A day is then rebuilt one
 * group of parts at a time (shared/views/writer.ts), so a run holds about 1/partitions of a day's rows, not the
 * day: an hour of two million distinct urls fits a function of any size.
 */

/** An encoded visitor sketch as the store keeps it: sorted hashes, or base64 registers. */
export type StoredSketch = number[] | string;
/** A row as spilled: [value, hour of the day 0-23, views, errors, sketch?]. */
export type SpilledRow = [string, number, number, number, StoredSketch?];

/** Parts of a spill; a power of two, so that a power-of-two shard count maps onto parts (see `groupOf`). */
export const SPILL_PARTITIONS = 256;
/** Buffered bytes (JSON text) after which the parts go to disk. */
export const SPILL_MEMORY_BYTES = 4 << 20;

/** FNV-1a over UTF-16 code units: cheap, stable, and only balances shards (no security role). */
export function valueHash(value: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < value.length; i += 1) {
    hash ^= value.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

export interface RowSpillOptions {
  /** Where part files go (a fresh folder inside it). @default the OS temp folder */
  readonly dir?: string;
  /** @default SPILL_MEMORY_BYTES */
  readonly memoryBytes?: number;
}

export class RowSpill {
  private readonly buffers: string[][] = Array.from({ length: SPILL_PARTITIONS }, () => []);
  private bufferedBytes = 0;
  private folder: string | undefined;
  /** Rows added so far, and how many of them carry a visitor sketch. */
  count = 0;
  withSketch = 0;

  constructor(private readonly options: RowSpillOptions = {}) {}

  /** Whether the rows went to disk (for tests and accounting). */
  get spilled(): boolean {
    return this.folder !== undefined;
  }

  add(row: SpilledRow): void {
    const line = JSON.stringify(row);
    this.buffers[valueHash(row[0]) % SPILL_PARTITIONS]!.push(line);
    this.bufferedBytes += line.length + 1;
    this.count += 1;
    if (row[4] !== undefined) this.withSketch += 1;
    if (this.bufferedBytes > (this.options.memoryBytes ?? SPILL_MEMORY_BYTES)) this.flush();
  }

  private flush(): void {
    this.folder ??= mkdtempSync(join(this.options.dir ?? tmpdir(), 'view-spill-'));
    this.buffers.forEach((lines, part) => {
      if (lines.length === 0) return;
      appendFileSync(this.partFile(part), lines.join('\n') + '\n');
      lines.length = 0;
    });
    this.bufferedBytes = 0;
  }

  private partFile(part: number): string {
    return join(this.folder!, `p${part}.jsonl`);
  }

  /**
   * The rows of group `group` of `groups` (a power of two): the parts p with p % groups === group when
   * groups ≤ SPILL_PARTITIONS. A value's shard among `shards` (a power of two) is its hash % shards, so with
   * groups = min(shards, SPILL_PARTITIONS) every shard's rows are in exactly one group.
   */
  rowsOf(groups: number, group: number): SpilledRow[] {
    const rows: SpilledRow[] = [];
    for (let part = group; part < SPILL_PARTITIONS; part += groups) {
      if (this.folder) {
        let text = '';
        try {
          text = readFileSync(this.partFile(part), 'utf8');
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        }
        for (const line of text.split('\n')) if (line) rows.push(JSON.parse(line) as SpilledRow);
      }
      for (const line of this.buffers[part]!) rows.push(JSON.parse(line) as SpilledRow);
    }
    return rows;
  }

  /** A file in the spill's folder for other sorted runs (the day's ranking); undefined while in memory. */
  runFile(name: string): string | undefined {
    return this.folder ? join(this.folder, name) : undefined;
  }

  dispose(): void {
    if (this.folder) rmSync(this.folder, { recursive: true, force: true });
    this.folder = undefined;
    for (const lines of this.buffers) lines.length = 0;
  }
}

/** Reads a file of JSON lines one line at a time, in 64 KiB blocks. */
export class LineReader<T> {
  private readonly fd: number;
  private readonly block = Buffer.alloc(64 << 10);
  private readonly decoder = new StringDecoder('utf8');
  private pending = '';
  private lines: string[] = [];
  private done = false;

  constructor(path: string) {
    this.fd = openSync(path, 'r');
  }

  next(): T | undefined {
    while (this.lines.length === 0 && !this.done) {
      const read = readSync(this.fd, this.block, 0, this.block.length, null);
      if (read === 0) {
        this.done = true;
        closeSync(this.fd);
        this.pending += this.decoder.end();
        if (this.pending) this.lines.push(this.pending);
        break;
      }
      const text = this.pending + this.decoder.write(this.block.subarray(0, read));
      const parts = text.split('\n');
      this.pending = parts.pop()!;
      // Reversed, so that next() pops from the end.
      this.lines = parts.filter(Boolean).reverse();
    }
    const line = this.lines.pop();
    return line === undefined ? undefined : (JSON.parse(line) as T);
  }
}
