/** Numbers as the page shows them. */

const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export function count(n: number): string {
  return int.format(n);
}

/** A share 0..1 as a percentage: one decimal, two below 1 %. */
export function percent(share: number): string {
  const p = share * 100;
  if (p === 0) return '0 %';
  return `${p < 1 ? p.toFixed(2) : p.toFixed(1)} %`;
}

/** A change in share, in percentage points, with its sign. */
export function pp(change: number): string {
  const p = change * 100;
  const text = Math.abs(p) < 1 ? Math.abs(p).toFixed(2) : Math.abs(p).toFixed(1);
  if (Number(text) === 0) return '±0 pp';
  return `${p > 0 ? '+' : '−'}${text} pp`;
}
