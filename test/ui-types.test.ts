/** ui/src/types.ts: the profile type picker's choices, without a browser. */
import { describe, expect, it } from 'vitest';
import type { ServiceInfo } from '../ingest/api.js';
import { CPU_TYPE_ID } from '../profile/profile-type.js';
import { serviceTypes, typeChoices, typeFor } from '../ui/src/types.js';

const HEAP = 'memory:inuse_space:bytes:space:bytes';
const WALL = 'wall:wall:nanoseconds:wall:nanoseconds';
const MUTEX = 'mutex:delay:nanoseconds:contentions:count';
const svc = (name: string, types: string[]): ServiceInfo => ({ name, profiles: 1, samples: 1, firstSeen: 0, lastSeen: 0, types });

describe('profile type picker', () => {
  it("reads a service's types from the service list", () => {
    const list = [svc('a', [CPU_TYPE_ID, HEAP]), svc('b', [WALL])];
    expect(serviceTypes(list, 'a')).toEqual([CPU_TYPE_ID, HEAP]);
    expect(serviceTypes(list, 'c')).toEqual([]);
    expect(serviceTypes(undefined, 'a')).toEqual([]);
  });

  it('keeps the type shown when the service has it, else CPU, else its first', () => {
    expect(typeFor([CPU_TYPE_ID, HEAP], HEAP)).toBe(HEAP);
    expect(typeFor([CPU_TYPE_ID, WALL], HEAP)).toBe(CPU_TYPE_ID);
    expect(typeFor([WALL, HEAP], CPU_TYPE_ID)).toBe(WALL);
    expect(typeFor([], HEAP)).toBe(HEAP);
  });

  it('offers a choice only when there is one: CPU first, then by name, the current type always', () => {
    expect(typeChoices([CPU_TYPE_ID], CPU_TYPE_ID)).toBeUndefined();
    expect(typeChoices([], CPU_TYPE_ID)).toBeUndefined();
    expect(typeChoices([MUTEX, HEAP, CPU_TYPE_ID, WALL], HEAP)).toEqual([
      { id: CPU_TYPE_ID, label: 'CPU time' },
      { id: HEAP, label: 'in-use bytes' },
      { id: MUTEX, label: 'mutex: delay' },
      { id: WALL, label: 'wall time' },
    ]);
    // A link to a type the list does not have still shows it, next to what there is.
    expect(typeChoices([CPU_TYPE_ID], HEAP)?.map((c) => c.id)).toEqual([CPU_TYPE_ID, HEAP]);
  });
});
