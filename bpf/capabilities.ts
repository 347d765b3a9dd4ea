/** Which of the capabilities Kiln needs the current process lacks, named as the user must grant them. */
import { readFileSync } from 'node:fs';

const CAP = { CAP_SYS_ADMIN: 21, CAP_SYS_PTRACE: 19, CAP_PERFMON: 38, CAP_BPF: 39 } as const;
type CapName = keyof typeof CAP;

export function effectiveCapabilities(): bigint {
  const status = readFileSync('/proc/self/status', 'utf8');
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  return m ? BigInt('0x' + m[1]) : 0n;
}

/**
 * Loading and attaching the sampler needs CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN
 * covers both on older kernels); reading code objects from other processes'
 * memory needs CAP_SYS_PTRACE.
 */
export function missingCapabilities(caps = effectiveCapabilities()): CapName[] {
  const has = (c: CapName) => (caps >> BigInt(CAP[c])) & 1n;
  const missing: CapName[] = [];
  if (!has('CAP_BPF') && !has('CAP_SYS_ADMIN')) missing.push('CAP_BPF');
  if (!has('CAP_PERFMON') && !has('CAP_SYS_ADMIN')) missing.push('CAP_PERFMON');
  if (!has('CAP_SYS_PTRACE')) missing.push('CAP_SYS_PTRACE');
  return missing;
}

export class MissingCapabilityError extends Error {
  constructor(readonly missing: CapName[]) {
    super(
      `kiln needs ${missing.join(', ')} to profile (missing from this process). ` +
        `Run it as root, or grant them: setcap cap_bpf,cap_perfmon,cap_sys_ptrace+ep on the node binary, ` +
        `or add them to the container's or unit's capabilities.`,
    );
  }
}

export function requireCapabilities(): void {
  const missing = missingCapabilities();
  if (missing.length) throw new MissingCapabilityError(missing);
}
