/** The per-process budget: what a window allows, when it starts over, and what the line says. */
import { describe, expect, it } from 'vitest';
import { DEFAULT_BUDGET, overBudgetText, TargetBudget, type BudgetLimits } from '../unwinder/budget.js';

const LIMITS: BudgetLimits = { ...DEFAULT_BUDGET, first_sights: 100, memory_bytes: 1 << 20 };

describe('a process budget', () => {
  it('allows up to each limit in a window, and names the first item past it', () => {
    const b = new TargetBudget(LIMITS, 10_000, 0);
    b.charge('first_sights', 100);
    b.charge('memory_bytes', 1 << 20);
    expect(b.over()).toBeUndefined();
    b.charge('memory_bytes', 1);
    expect(b.over()).toEqual({ item: 'memory_bytes', used: (1 << 20) + 1, limit: 1 << 20 });
    b.charge('first_sights', 1);
    expect(b.over()?.item).toBe('first_sights');
  });

  it('starts over only once a whole window has passed', () => {
    const b = new TargetBudget(LIMITS, 10_000, 1000);
    b.charge('first_sights', 80);
    b.roll(10_999);
    b.charge('first_sights', 80);
    expect(b.over()?.used).toBe(160);
    b.roll(11_000);
    expect(b.over()).toBeUndefined();
    b.charge('first_sights', 80);
    expect(b.over()).toBeUndefined();
  });

  it('says what went over, in units', () => {
    expect(overBudgetText({ item: 'first_sights', used: 20290, limit: 20000 }, 10_000)).toBe(
      '20290 first sights of code objects in 10 s, over its budget of 20000',
    );
    expect(overBudgetText({ item: 'memory_bytes', used: 70 << 20, limit: 64 << 20 }, 10_000)).toBe('70.0 MiB read from its memory in 10 s, over its budget of 64.0 MiB');
  });
});
