/**
 * Nothing invented: the symbolizer names a frame only from what the kernel
 * saw of a live code object of the process's own type. Checked on real
 * interpreters against objects at known addresses, with first-sight events
 * made here as the kernel makes them (the real ones are exercised by every
 * profile test): a live function; a str and a dict taken for code objects;
 * a wrong identity; and code objects freed after the kernel saw them, whose
 * memory is left as it was or handed out again (the way the `--all` test once
 * met a frame named `28288`). With the names copied by the kernel, a freed
 * code object is still named as it was; without them, or past what was
 * copied, it is [unknown code].
 */
import { describe, expect, it } from 'vitest';
import type { CodeEvent } from '../bpf/abi.js';
import { SYNTHETIC } from '../profile/profile.js';
import { inspectProcess } from '../unwinder/interpreter.js';
import { kernelLayout } from '../unwinder/kernel-layout.js';
import { ProcessMemory } from '../unwinder/memory.js';
import { Symbolizer } from '../unwinder/symbolizer.js';
import { firstSight, nextCodeId } from '../kit/first-sight.js';
import { startWorkload } from '../kit/harness.js';
import { pythonFor, testedVersions } from '../kit/pythons.js';

const versions = testedVersions('symbolizer');

describe('the symbolizer invents nothing', () => {
  for (const version of versions) {
    it(`${version}: names what the kernel saw of a live code object, and nothing else`, async () => {
      const py = pythonFor(version);
      if (!py) throw new Error(`Python ${version} is required and missing: run scripts/setup.sh --test`);
      const w = await startWorkload(py, 'objects.py', [], {}, { stdin: true });
      const mem = new ProcessMemory(w.pid);
      try {
        const proc = inspectProcess(w.pid);
        const kl = kernelLayout(proc.layout);
        const addr = (key: string) => BigInt(w.info[key] as number);
        const sym = new Symbolizer(w.pid, proc.layout, proc.types, proc.imageFile);
        const name = (ev: CodeEvent) => {
          sym.learn(ev);
          return sym.frame({ codeId: ev.codeId, lasti: -1 });
        };
        const faults = () => ({ ...sym.stats.faults });

        // a live function, from the kernel's copies alone, and from the process
        const want = { name: 'named_function', systemName: 'named_function', filename: w.info.filename, startLine: w.info.firstlineno, line: w.info.firstlineno };
        expect(name(firstSight(mem, w.pid, kl, addr('code'), true))).toEqual(want);
        expect(sym.stats.reads, 'reads of the process when everything was copied').toBe(0);
        expect(name(firstSight(mem, w.pid, kl, addr('code'), false))).toEqual(want);
        expect(sym.stats.reads).toBeGreaterThan(0);

        // a frame whose id was never reported
        expect(sym.frame({ codeId: 999_999, lasti: 0 }).name).toBe(SYNTHETIC.unknownCode);
        expect(sym.frame({ codeId: 0, lasti: 0 }).name).toBe(SYNTHETIC.unknownCode);

        // objects that are not code objects, read from the process
        for (const key of ['str', 'dict']) expect(name(firstSight(mem, w.pid, kl, addr(key), false)).name, key).toBe(SYNTHETIC.unknownCode);
        expect(sym.stats.faults.type).toBe(2);
        // the right address with another identity: not the code object the kernel saw
        const other = firstSight(mem, w.pid, kl, addr('code'), false);
        other.identPtrs[1] = other.identPtrs[1]! + 16n;
        expect(name(other).name).toBe(SYNTHETIC.unknownCode);
        expect(sym.stats.faults.identity).toBe(1);

        // code objects seen alive by the kernel and freed before userspace names them
        for (const which of ['quiet', 'reused', 'long', 'table']) {
          const copied = firstSight(mem, w.pid, kl, addr(which), true);
          const bare = firstSight(mem, w.pid, kl, addr(which), false);
          const alive = firstSight(mem, w.pid, kl, addr(which), true);
          const named = name(alive);
          expect(named.systemName, `${which} while alive`).toBe(`${which}_victim`);
          w.send(which);
          expect(JSON.parse(await w.nextLine())).toEqual({ freed: true });
          const before = faults();
          const cutBefore = sym.stats.cutLineTables;
          const afterCopied = name(copied);
          const afterBare = name(bare);
          const refused = Object.entries(faults()).reduce((n, [k, v]) => n + v - before[k as keyof typeof before], 0);
          const refusedFromCopies = afterCopied.name === SYNTHETIC.unknownCode ? 1 : 0;
          if (which === 'long') {
            // its filename goes on past the copy and is read from the process: if that
            // string died with the code object, [unknown code]; if it lives on (3.12+
            // interns it, immortal), what is read is checked against the copy
            expect([SYNTHETIC.unknownCode, named.name], `long victim from copies after its free: ${JSON.stringify(afterCopied)}`).toContain(afterCopied.name);
            if (afterCopied.name !== SYNTHETIC.unknownCode) expect(afterCopied).toEqual(named);
            expect(refused, JSON.stringify(faults())).toBe(1 + refusedFromCopies);
          } else if (which === 'table') {
            // only its line table goes on past the copy: named, with the lines the copy covers
            expect(afterCopied, 'table victim from copies after its free').toEqual(named);
            expect(sym.stats.cutLineTables - cutBefore, 'named with the start of its line table').toBe(1);
            expect(sym.frame({ codeId: copied.codeId, lasti: 1 }).line, 'a line the copy covers').toBe(Number(named.startLine) + 1);
            // its last instruction, in the units the kernel records (bytes on 3.9, code units after)
            const unit = proc.layout.frame.lastiIsPointer ? 2 : proc.layout.frame.lastiUnitBytes;
            const last = (Number(w.info.table_code_bytes) - 2) / unit;
            expect(sym.frame({ codeId: copied.codeId, lasti: last }).line, 'a line past the copy').toBe(0);
            expect(refused, JSON.stringify(faults())).toBe(1);
          } else {
            // the kernel's copies name it as it was, whatever its memory holds now
            expect(afterCopied, `${which} victim from copies after its free`).toEqual(named);
            expect(refused, JSON.stringify(faults())).toBe(1);
          }
          expect(afterBare.name, `${which} victim read after its free: ${JSON.stringify(afterBare)}`).toBe(SYNTHETIC.unknownCode);
          // left as it was, the quiet victim still has its identity: only its header tells it is free
          if (which === 'quiet') expect(faults().dead - before.dead, JSON.stringify(faults())).toBe(1);
        }
        console.log(`${version}: ${JSON.stringify(sym.stats)}`);

        // Code objects no sample names for a while are forgotten (the kernel is told to
        // report them again if they come back); one named again meanwhile is kept.
        const keeper = new Symbolizer(w.pid, proc.layout, proc.types, proc.imageFile);
        const idle = firstSight(mem, w.pid, kl, addr('code'), true);
        const busy = { ...firstSight(mem, w.pid, kl, addr('code'), true), codeId: nextCodeId() };
        keeper.learn(idle);
        keeper.learn(busy);
        for (let drain = 0; drain < 5; drain++) {
          keeper.beginDrain();
          keeper.frame({ codeId: busy.codeId, lasti: 0 });
        }
        expect(keeper.idle(3).map((c) => c.codeId)).toEqual([idle.codeId]);
        keeper.beginDrain();
        keeper.forget([idle.codeId, busy.codeId]);
        expect(keeper.size).toBe(1);
        expect(keeper.frame({ codeId: busy.codeId, lasti: -1 }).name).toBe('named_function');
        expect(keeper.frame({ codeId: idle.codeId, lasti: -1 }).name).toBe(SYNTHETIC.unknownCode);
      } finally {
        mem.close();
        await w.stop();
      }
    });
  }
});
