/**
 * Nothing invented: the symbolizer names a frame only from a live code
 * object of the process's own PyCode_Type whose identity is the one the
 * kernel saw. Checked on real interpreters against objects at known
 * addresses: a live function, a str and a dict (not code objects), a wrong
 * identity, and a code object freed with its memory handed out again (the
 * way the `--all` test once met a frame named `28288`).
 */
import { describe, expect, it } from 'vitest';
import { codeIdentity, codeReadSize } from '../bpf/abi.js';
import { SYNTHETIC } from '../profile/profile.js';
import { inspectProcess } from '../unwinder/interpreter.js';
import { kernelLayout } from '../unwinder/kernel-layout.js';
import { ProcessMemory } from '../unwinder/memory.js';
import { Symbolizer } from '../unwinder/symbolizer.js';
import { startWorkload } from '../kit/harness.js';
import { OPTIONAL_VERSIONS, REQUIRED_VERSIONS, pythonFor } from '../kit/pythons.js';

const versions = [...REQUIRED_VERSIONS, ...OPTIONAL_VERSIONS.filter((v) => pythonFor(v))].sort(
  (a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]),
);

describe('the symbolizer invents nothing', () => {
  for (const version of versions) {
    it(`${version}: names a live code object, and nothing that is not the code object the kernel saw`, async () => {
      const py = pythonFor(version);
      if (!py) throw new Error(`Python ${version} is required and missing: run scripts/setup.sh --test`);
      const w = await startWorkload(py, 'objects.py', [], {}, { stdin: true });
      const mem = new ProcessMemory(w.pid);
      try {
        const proc = inspectProcess(w.pid);
        const kl = kernelLayout(proc.layout);
        const addr = (key: string) => BigInt(w.info[key] as number);
        // what the kernel records of a code object: its address and the hash of its identity
        const identityOf = (a: bigint) => codeIdentity(mem.read(a, codeReadSize(kl)), kl);
        const sym = new Symbolizer(w.pid, proc.layout, proc.types);

        const code = addr('code');
        const named = sym.frame({ code, lasti: -1, fingerprint: identityOf(code) });
        expect(named).toEqual({
          name: 'named_function',
          systemName: 'named_function',
          filename: w.info.filename,
          startLine: w.info.firstlineno,
          line: w.info.firstlineno,
        });

        // the same address with another identity: another code object once lived (or will live) there
        expect(sym.frame({ code, lasti: 0, fingerprint: (identityOf(code) + 1) >>> 0 }).name).toBe(SYNTHETIC.unknownCode);
        expect(sym.stats.identityMismatches).toBe(1);
        // objects of other types, whatever identity is claimed for them
        for (const key of ['str', 'dict']) {
          expect(sym.frame({ code: addr(key), lasti: 0, fingerprint: identityOf(addr(key)) }).name, key).toBe(SYNTHETIC.unknownCode);
        }
        expect(sym.stats.objectFaults.type).toBe(2);
        // the kernel's "not a code object"
        expect(sym.frame({ code: 0n, lasti: 0, fingerprint: 0 }).name).toBe(SYNTHETIC.unknownCode);

        // code objects seen alive by the kernel, freed before userspace reads them: one
        // whose memory is left as it was (only the allocator's link overwrites its
        // first word), one whose memory is handed out again to new strings and code
        for (const which of ['quiet', 'reused']) {
          const victim = addr(which);
          const seen = identityOf(victim);
          w.send(which);
          expect(JSON.parse(await w.nextLine())).toEqual({ freed: true });
          const late = new Symbolizer(w.pid, proc.layout, proc.types);
          const frame = late.frame({ code: victim, lasti: 0, fingerprint: seen });
          expect(frame.name, `the freed ${which} victim read as ${JSON.stringify(frame)}`).toBe(SYNTHETIC.unknownCode);
          const refused = late.stats.identityMismatches + Object.values(late.stats.objectFaults).reduce((a, b) => a + b, 0);
          expect(refused, JSON.stringify(late.stats)).toBe(1);
          // left as it was, the victim still hashes to what the kernel saw: only its header tells it is free
          if (which === 'quiet') expect(late.stats.objectFaults.dead, JSON.stringify(late.stats)).toBe(1);
        }
      } finally {
        mem.close();
        await w.stop();
      }
    });
  }
});
