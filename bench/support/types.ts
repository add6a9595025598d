/** One figure of a benchmark run; `npm run bench` collects every section's figures into one table. */
export interface BenchFigure {
  /** Section, e.g. `speed`, `batch`, `api`, `e2e`. */
  readonly section: string;
  /** What was measured, e.g. `records/s per core (decode+validate+aggregate)`. */
  readonly metric: string;
  readonly value: number;
  readonly unit: string;
  /** The naive baseline measured in the same run, when the figure has one. */
  readonly baseline?: number;
  /** How the figure compares with the baseline, e.g. value / baseline or baseline / value; say which in `note`. */
  readonly ratio?: number;
  readonly note?: string;
}

export interface BenchOptions {
  /** CI-sized run: the whole bench in under 5 minutes on 2 cores. */
  readonly quick: boolean;
  /** Progress lines go here (stderr). */
  readonly log: (line: string) => void;
  /** The cardinality axis runs only this number of distinct urls per day (`--urls N`). */
  readonly urls?: number;
}

export type BenchSection = (options: BenchOptions) => Promise<BenchFigure[]>;

/** What `npm run bench` writes to bench/results/latest*.json. */
export interface BenchReport {
  readonly startedAt: string;
  readonly quick: boolean;
  readonly machine: {
    readonly node: string;
    readonly cpus: number;
    readonly cpuModel: string;
    readonly platform: string;
  };
  readonly durationSeconds: number;
  /** Seconds each section took, in the order they ran (what to trim when the quick run inside npm test grows). */
  readonly sectionSeconds?: Readonly<Record<string, number>>;
  readonly figures: readonly BenchFigure[];
  /** Sections that failed, with the error; a failed section fails the command. */
  readonly failures: ReadonlyArray<{ readonly section: string; readonly error: string }>;
}
