import { describe, expect, it } from 'vitest';
import { CPU_TYPE, CPU_TYPE_ID, nanosecondsPer, parseProfileType, profileTypeId, typePart, valueKind } from '../profile/profile-type.js';

describe('profile type IDs', () => {
  it('spell and read back Pyroscope IDs', () => {
    expect(profileTypeId(CPU_TYPE)).toBe(CPU_TYPE_ID);
    for (const id of [CPU_TYPE_ID, 'memory:inuse_space:bytes:space:bytes', 'wall:wall:nanoseconds:wall:nanoseconds', 'mutex:contentions:count::']) {
      expect(profileTypeId(parseProfileType(id)!)).toBe(id);
    }
    expect(parseProfileType('memory:alloc_objects:count:space:bytes')).toEqual({
      name: 'memory',
      sampleType: 'alloc_objects',
      sampleUnit: 'count',
      periodType: 'space',
      periodUnit: 'bytes',
    });
  });

  it('refuse what is not one', () => {
    for (const bad of ['', 'cpu', 'a:b:c:d', 'a:b:c:d:e:f', '::c:d:e', 'a:b::d:e', 'a b:c:d:e:f', 'a:b:c:d:' + 'x'.repeat(300), 'a:b"c:d:e:f']) {
      expect(parseProfileType(bad), bad).toBeUndefined();
    }
    expect(typePart('a:b c"d')).toBe('a_b_c_d');
  });

  it('tell time, bytes and counts apart', () => {
    expect(valueKind(CPU_TYPE)).toBe('nanoseconds');
    expect(valueKind(parseProfileType('wall:wall:microseconds:wall:microseconds')!)).toBe('nanoseconds');
    expect(valueKind(parseProfileType('memory:inuse_space:bytes:space:bytes')!)).toBe('bytes');
    expect(valueKind(parseProfileType('memory:inuse_objects:count:space:bytes')!)).toBe('count');
    expect(nanosecondsPer('microseconds')).toBe(1000);
    expect(nanosecondsPer('constructor')).toBeUndefined();
  });
});
