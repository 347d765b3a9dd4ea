/**
 * The BPF boundary is defined once, in bpf/kiln.h; bpf/abi.ts mirrors it.
 * Compile the header with the C compiler and check that every size and
 * offset the TypeScript side uses is what C says, and that the constants agree.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as abi from '../bpf/abi.js';
import { REPO, tempDir } from '../kit/harness.js';

describe('bpf/abi.ts mirrors bpf/kiln.h', () => {
  it('agrees with the C compiler on every struct size and field offset', () => {
    const lines: string[] = [];
    for (const [struct, layout] of Object.entries(abi.STRUCTS)) {
      lines.push(`printf("${struct} sizeof %zu\\n", sizeof(struct ${struct}));`);
      for (const field of Object.keys(layout.fields)) lines.push(`printf("${struct} ${field} %zu\\n", offsetof(struct ${struct}, ${field}));`);
    }
    const src = `#include <linux/types.h>\n#include <stddef.h>\n#include <stdio.h>\n#include "kiln.h"\nint main(void) {\n${lines.join('\n')}\nreturn 0;\n}\n`;
    const tmp = tempDir();
    try {
      writeFileSync(join(tmp.dir, 'abi.c'), src);
      execFileSync('cc', ['-I', join(REPO, 'bpf'), '-o', join(tmp.dir, 'abi'), join(tmp.dir, 'abi.c')]);
      const out = execFileSync(join(tmp.dir, 'abi'), { encoding: 'utf8' });
      let checked = 0;
      for (const line of out.trim().split('\n')) {
        const [struct, field, value] = line.split(' ') as [keyof typeof abi.STRUCTS, string, string];
        const layout = abi.STRUCTS[struct];
        const ts = field === 'sizeof' ? layout.size : (layout.fields as Record<string, { offset: number }>)[field]!.offset;
        expect(ts, `${struct}.${field}`).toBe(Number(value));
        checked++;
      }
      expect(checked).toBeGreaterThan(30);
    } finally {
      tmp.cleanup();
    }
  });

  it('agrees on the constants and the stat names', () => {
    const h = readFileSync(join(REPO, 'bpf', 'kiln.h'), 'utf8');
    const define = (name: string) => {
      const m = new RegExp(`#define ${name}\\s+\\(?(\\d+)(?:u? << (\\d+))?`).exec(h);
      if (!m) throw new Error(`${name} not in kiln.h`);
      return m[2] ? Number(m[1]) << Number(m[2]) : Number(m[1]);
    };
    expect(define('KILN_MAX_DEPTH')).toBe(abi.KILN_MAX_DEPTH);
    expect(define('KILN_CHUNK_FRAMES')).toBe(abi.KILN_CHUNK_FRAMES);
    expect(define('KILN_READ_WINDOW')).toBe(abi.KILN_READ_WINDOW);
    expect(define('KILN_F_TRUNCATED')).toBe(abi.KILN_F_TRUNCATED);
    expect(define('KILN_F_NO_TSTATE')).toBe(abi.KILN_F_NO_TSTATE);
    expect(define('KILN_F_READ_ERROR')).toBe(abi.KILN_F_READ_ERROR);
    expect(define('KILN_F_STACK_LOST')).toBe(abi.KILN_F_STACK_LOST);
    expect(define('KILN_EVENT_EXEC')).toBe(abi.KILN_EVENT_EXEC);
    expect(define('KILN_EVENT_WAS_FOLLOWED')).toBe(abi.KILN_EVENT_WAS_FOLLOWED);
    expect(define('KILN_MAX_EVENTS')).toBe(abi.KILN_MAX_EVENTS);
    const stats = [...h.matchAll(/KILN_STAT_(\w+) = (\d+)/g)].filter((m) => m[1] !== 'MAX');
    expect(stats.map((m) => [m[1]!.toLowerCase(), Number(m[2])])).toEqual(abi.STAT_NAMES.map((n, i) => [n, i]));
    expect(define('KILN_STACK_WINDOW')).toBe(abi.KILN_STACK_WINDOW);
    expect(define('KILN_CODE_MEMO')).toBe(abi.KILN_CODE_MEMO);
    expect(define('KILN_COPY_MAX')).toBe(abi.KILN_COPY_MAX);
    expect(define('KILN_STATE_TIMING')).toBe(abi.KILN_STATE_TIMING);
    expect(define('KILN_CODE_IDENT_INTS')).toBe(abi.KILN_CODE_IDENT_INTS);
    expect(define('KILN_CODE_IDENT_PTRS')).toBe(abi.KILN_CODE_IDENT_PTRS);
  });
});
