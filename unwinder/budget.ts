/**
 * How much work one profiled process may make Kiln do. Everything Kiln does
 * for a process is paid for by what that process does: the code objects it
 * runs (each named once), the names and tables longer than the kernel copies
 * (read from its memory), its sources (3.9 and 3.10 qualnames), its stacks
 * (each distinct one symbolized once), its execs (each an inspection). A
 * process that asks for more than a window's budget of any of these is no
 * longer followed, so a hostile or pathological one cannot starve the others
 * (of the agent's CPU, or of the kernel's first-sight ring they share).
 *
 * The limits are far above what real programs need (a busy service uses a
 * few percent of them once it has started), and counted in work, not time,
 * so that a loaded machine does not make a well-behaved process look
 * hostile; time is only a backstop for work nothing else counts.
 */

export const BUDGET_ITEMS = ['first_sights', 'memory_bytes', 'source_bytes', 'line_table_bytes', 'stack_frames', 'execs', 'cpu_ms'] as const;
export type BudgetItem = (typeof BUDGET_ITEMS)[number];
export type BudgetLimits = Record<BudgetItem, number>;

/** The window the limits are per. */
export const BUDGET_WINDOW_MS = 10_000;

export const DEFAULT_BUDGET: BudgetLimits = {
  // first sights the kernel was asked for, reported or not: a process
  // starting up asks for a few thousand; one asking for more every window
  // keeps the others' first sights out of the ring they share
  first_sights: 20_000,
  memory_bytes: 64 << 20,
  source_bytes: 64 << 20,
  line_table_bytes: 64 << 20,
  // frames of stacks not seen before, symbolized: ~2,500 new 40-frame stacks per second
  stack_frames: 1_000_000,
  execs: 20,
  // a fifth of a core: ~100 times what a busy process costs
  cpu_ms: 2_000,
};

/** What the limits mean, for the line that says a process went over one. */
export const BUDGET_UNITS: Record<BudgetItem, string> = {
  first_sights: 'first sights of code objects',
  memory_bytes: 'read from its memory',
  source_bytes: 'of its sources read',
  line_table_bytes: 'of line tables decoded',
  stack_frames: 'frames of new stacks symbolized',
  execs: 'execs',
  cpu_ms: 'ms of CPU spent on it',
};

export interface OverBudget {
  item: BudgetItem;
  used: number;
  limit: number;
}

/** One process's use of its budget in the current window. */
export class TargetBudget {
  private used: BudgetLimits = emptyUse();
  private windowStart: number;

  constructor(
    private readonly limits: BudgetLimits,
    private readonly windowMs: number,
    now: number,
  ) {
    this.windowStart = now;
  }

  /** Starts a new window if this one is over. */
  roll(now: number): void {
    if (now - this.windowStart < this.windowMs) return;
    this.used = emptyUse();
    this.windowStart = now;
  }

  charge(item: BudgetItem, amount: number): void {
    this.used[item] += amount;
  }

  /** The first item over its limit in this window, if any. */
  over(): OverBudget | undefined {
    for (const item of BUDGET_ITEMS) if (this.used[item] > this.limits[item]) return { item, used: this.used[item], limit: this.limits[item] };
    return undefined;
  }
}

function emptyUse(): BudgetLimits {
  return Object.fromEntries(BUDGET_ITEMS.map((k) => [k, 0])) as BudgetLimits;
}

function amount(item: BudgetItem, n: number): string {
  return item.endsWith('_bytes') ? `${(n / (1 << 20)).toFixed(1)} MiB` : String(Math.round(n));
}

/** "20290 first sights of code objects in 10 s, over its budget of 20000": why a process was dropped. */
export function overBudgetText(over: OverBudget, windowMs: number): string {
  return `${amount(over.item, over.used)} ${BUDGET_UNITS[over.item]} in ${windowMs / 1000} s, over its budget of ${amount(over.item, over.limit)}`;
}
