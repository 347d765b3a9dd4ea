/** A minimal Prometheus text-format registry for the agent's /metrics. */

type Kind = 'counter' | 'gauge';

interface Metric {
  help: string;
  kind: Kind;
  values: Map<string, number>;
}

export class Metrics {
  private readonly metrics = new Map<string, Metric>();

  define(name: string, kind: Kind, help: string): void {
    this.metrics.set(name, { help, kind, values: new Map() });
  }

  set(name: string, value: number, labels: Record<string, string> = {}): void {
    this.metric(name).values.set(labelText(labels), value);
  }

  add(name: string, delta: number, labels: Record<string, string> = {}): void {
    const m = this.metric(name);
    const k = labelText(labels);
    m.values.set(k, (m.values.get(k) ?? 0) + delta);
  }

  get(name: string, labels: Record<string, string> = {}): number {
    return this.metric(name).values.get(labelText(labels)) ?? 0;
  }

  private metric(name: string): Metric {
    const m = this.metrics.get(name);
    if (!m) throw new Error(`metric ${name} is not defined`);
    return m;
  }

  render(): string {
    const out: string[] = [];
    for (const [name, m] of this.metrics) {
      out.push(`# HELP ${name} ${m.help}`, `# TYPE ${name} ${m.kind}`);
      if (m.values.size === 0) out.push(`${name} 0`);
      for (const [labels, v] of m.values) out.push(`${name}${labels} ${Number.isInteger(v) ? v : v.toFixed(6)}`);
    }
    return out.join('\n') + '\n';
  }
}

function labelText(labels: Record<string, string>): string {
  const keys = Object.keys(labels).sort();
  if (!keys.length) return '';
  return `{${keys.map((k) => `${k}="${labels[k]!.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`).join(',')}}`;
}
