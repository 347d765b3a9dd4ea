/**
 * Opening a file a process names must not act on it. Opening a FIFO for
 * reading, even without blocking, wakes a writer waiting in its open: a
 * hostile process would learn the agent looked (and a device's open can do
 * more). Kiln resolves the name to an O_PATH handle and checks it before
 * opening anything for reading.
 */
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openChecked, readProcessFile, TargetFileError } from '../unwinder/target-files.js';
import { tempDir } from '../kit/harness.js';

/** The kernel function a task sleeps in; "0" once it is runnable again. */
const wchan = (pid: number) => readFileSync(`/proc/${pid}/wchan`, 'utf8');

describe('files a process names', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it("leaves a FIFO's blocked writer blocked: refused from its handle, never opened for reading", async () => {
    const fifo = join(tmp.dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const writer = spawn('sh', ['-c', `echo x > ${fifo}`], { stdio: 'ignore' });
    try {
      // the writer sleeps in the FIFO's open until a reader opens it
      for (let i = 0; i < 200 && !/wait_for_partner|fifo/.test(wchan(writer.pid!)); i++) await new Promise((r) => setTimeout(r, 25));
      const blocked = wchan(writer.pid!);
      expect(blocked).toMatch(/wait_for_partner|fifo/);

      expect(() => readProcessFile(process.pid, fifo, 1 << 20)).toThrow(TargetFileError);
      expect(() => openChecked(fifo, fifo, 1 << 20)).toThrow(/not a regular file/);
      // a reader's open would have made it runnable at once (wchan "0") and let it write
      expect(wchan(writer.pid!)).toBe(blocked);
      expect(writer.exitCode).toBeNull();
    } finally {
      writer.kill('SIGKILL');
    }
  });
});
