// The service's metrics in the Prometheus text format (version 0.0.4): counters and histograms kept in
// memory, written out on GET /metrics. Small enough not to need a client library.

type Labels = Record<string, string>;

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(
    ([k, v]) => `${k}="${v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`))}"`,
  );
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

class Counter {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels: Labels = {}, by = 1): void {
    const key = labelText(labels);
    const entry = this.values.get(key) ?? { labels, value: 0 };
    entry.value += by;
    this.values.set(key, entry);
  }

  get(labels: Labels = {}): number {
    return this.values.get(labelText(labels))?.value ?? 0;
  }

  text(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [key, { value }] of this.values) lines.push(`${this.name}${key} ${value}`);
    return lines.join('\n');
  }
}

class Histogram {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
  ) {}

  observe(value: number, labels: Labels = {}): void {
    const key = labelText(labels);
    const s = this.series.get(key) ?? { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
    for (const [i, le] of this.buckets.entries()) if (value <= le) s.counts[i]! += 1;
    s.sum += value;
    s.count += 1;
    this.series.set(key, s);
  }

  count(labels: Labels = {}): number {
    return this.series.get(labelText(labels))?.count ?? 0;
  }

  sum(labels: Labels = {}): number {
    return this.series.get(labelText(labels))?.sum ?? 0;
  }

  text(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const { labels, counts, sum, count } of this.series.values()) {
      for (const [i, le] of this.buckets.entries())
        lines.push(`${this.name}_bucket${labelText({ ...labels, le: String(le) })} ${counts[i]}`);
      lines.push(`${this.name}_bucket${labelText({ ...labels, le: '+Inf' })} ${count}`);
      lines.push(`${this.name}_sum${labelText(labels)} ${sum}`);
      lines.push(`${this.name}_count${labelText(labels)} ${count}`);
    }
    return lines.join('\n');
  }
}

/** Everything GET /metrics reports. */
export class ServeMetrics {
  readonly requests = new Counter('nfp_requests_total', 'HTTP requests answered, by route and status code.');
  readonly latency = new Histogram(
    'nfp_request_duration_seconds',
    'Time from request to response, by route.',
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  );
  readonly detections = new Counter(
    'nfp_detections_total',
    'Inputs judged, by outcome: clean, attacked, or rejected (could not be judged; reported attacked).',
  );
  readonly batchRows = new Histogram(
    'nfp_batch_rows',
    'Rows per model call: requests that arrive together share one call.',
    [1, 2, 4, 8, 16, 32, 64, 128],
  );
  readonly errors = new Counter('nfp_errors_total', 'Requests answered with an error, by error code.');

  text(): string {
    const all = [this.requests, this.latency, this.detections, this.batchRows, this.errors];
    return `${all.map((m) => m.text()).join('\n')}\n`;
  }
}
