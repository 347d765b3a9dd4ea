/**
 * Frame colours. In a single profile a frame is coloured by where its code
 * lives, so the service's own code (warm) stands out against the standard
 * library (blue), installed packages (green) and Kiln's synthetic frames
 * (grey). In a diff it is coloured by how its share of the CPU changed.
 */

export type Origin = 'user' | 'stdlib' | 'packages' | 'synthetic';

export const ORIGINS: { origin: Origin; label: string; title: string }[] = [
  { origin: 'user', label: 'your code', title: 'files outside the standard library and site-packages' },
  { origin: 'stdlib', label: 'standard library', title: 'lib/python3.X/ and <frozen ...> modules' },
  { origin: 'packages', label: 'site-packages', title: 'site-packages and dist-packages' },
  { origin: 'synthetic', label: 'kiln', title: 'synthetic frames: [truncated], [unknown code], [other] ...' },
];

const PACKAGES = /[\\/](?:site|dist)-packages[\\/]/;
// lib/python3.11/, lib64/python3.9/, pyenv's versions/3.11.7/lib/python3.11/, Windows' Lib\.
const STDLIB = /(?:^|[\\/])lib(?:64)?[\\/]python3(?:\.\d+)?t?[\\/]|(?:^|[\\/])Lib[\\/]/;

export function originOf(name: string, file: string | undefined): Origin {
  if (!file) return 'synthetic';
  if (name.startsWith('[') && name.endsWith(']')) return 'synthetic';
  if (file.startsWith('<frozen ')) return 'stdlib';
  if (PACKAGES.test(file)) return 'packages';
  if (STDLIB.test(file)) return 'stdlib';
  return 'user';
}

/** A small stable hash of the name, so neighbouring frames differ in lightness but a function keeps its colour. */
function shade(name: string): number {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return ((h >>> 0) % 1000) / 1000;
}

export function originColor(origin: Origin, name: string): string {
  const v = shade(name);
  switch (origin) {
    case 'user':
      return `hsl(${Math.round(14 + 26 * v)}, 88%, ${Math.round(60 + 8 * v)}%)`;
    case 'stdlib':
      return `hsl(${Math.round(205 + 15 * v)}, 55%, ${Math.round(74 + 8 * v)}%)`;
    case 'packages':
      return `hsl(${Math.round(140 + 25 * v)}, 42%, ${Math.round(66 + 10 * v)}%)`;
    case 'synthetic':
      return `hsl(0, 0%, ${Math.round(78 + 6 * v)}%)`;
  }
}

/** Swatch colour for the legend: the middle of each range. */
export function legendColor(origin: Origin): string {
  return originColor(origin, 'legend');
}

export const HIGHLIGHT = '#c026d3';

/** Below this change in share (0.1 percentage point) a frame is drawn as unchanged. */
export const NEUTRAL_CHANGE = 0.001;

export const DIFF_NEUTRAL = 'rgb(212, 212, 216)';

/**
 * Red for a frame whose share grew, green for one that shrank; the more it
 * changed relative to the largest change in the view, the deeper the colour.
 * The square root keeps small but real changes visible next to a large one.
 */
export function diffColor(change: number, maxChange: number): string {
  if (!(Math.abs(change) >= NEUTRAL_CHANGE) || !(maxChange > 0)) return DIFF_NEUTRAL;
  const t = Math.min(1, Math.sqrt(Math.abs(change) / maxChange));
  const mix = (a: number, b: number): number => Math.round(a + (b - a) * t);
  // From a light tint to a strong colour.
  return change > 0
    ? `rgb(${mix(248, 220)}, ${mix(196, 38)}, ${mix(190, 38)})`
    : `rgb(${mix(190, 22)}, ${mix(232, 150)}, ${mix(200, 70)})`;
}
