/** The source check the profile tests apply to every frame (kit/names.ts) catches what it must. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../kit/harness.js';
import { SourceFiles, misnamed } from '../kit/names.js';
import type { Frame } from '../profile/profile.js';

const SOURCE = [
  'import json', // 1
  '', // 2
  '@decorator(', // 3
  '    arg=1)', // 4
  'def decorated(x):', // 5
  '    return [y for y in x]', // 6
  '', // 7
  'class Shape:', // 8
  '    def area(self):', // 9
  '        f = lambda: 1', // 10
  '        return f()', // 11
].join('\n');

describe('misnamed()', () => {
  const tmp = tempDir();
  const file = join(tmp.dir, 'mod.py');
  writeFileSync(file, SOURCE);
  writeFileSync(join(tmp.dir, 'late.py'), "\n# a comment\n'''docstring'''\n");
  const sources = new SourceFiles('/');
  const frame = (name: string, systemName: string, startLine: number, line = startLine): Frame => ({ name, systemName, filename: file, startLine, line });

  it('accepts frames named as the source says', () => {
    for (const f of [
      frame('<module>', '<module>', 1, 1),
      // 3.9 starts a module at its first statement, after blank and comment lines.
      { ...frame('<module>', '<module>', 3, 3), filename: join(tmp.dir, 'late.py') },
      frame('decorated', 'decorated', 3, 6),
      frame('decorated.<locals>.<listcomp>', '<listcomp>', 6),
      frame('Shape', 'Shape', 8),
      frame('Shape.area', 'area', 9, 11),
      frame('Shape.area.<locals>.<lambda>', '<lambda>', 10),
      { name: 'exec', systemName: 'exec', filename: '<string>', startLine: 1, line: 1 },
      { name: '[unknown code]', systemName: '[unknown code]', filename: '', startLine: 0, line: 0 },
    ])
      expect(misnamed(f, sources), JSON.stringify(f)).toBeUndefined();
  });

  it('refuses frames named otherwise', () => {
    const cases: [Frame, RegExp][] = [
      [frame('28288', '28288', 1), /line 1 is no def/],
      [frame('<module>', '<module>', 5), /module starts at line 1/],
      [frame('area', 'area', 5), /line 5 defines decorated/],
      [frame('Shape.other', 'area', 9), /qualname does not end in the name/],
      [frame('<lambda>', '<lambda>', 9), /no lambda on line 9/],
      [frame('decorated', 'decorated', 6), /line 6 is no def/],
      [frame('Shape.area', 'area', 9, 2), /before the code's first line/],
      [frame('x', 'x', 400), /the file has 11 lines/],
    ];
    for (const [f, why] of cases) expect(misnamed(f, sources), JSON.stringify(f)).toMatch(why);
    tmp.cleanup();
  });
});
