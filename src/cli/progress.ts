// A progress bar on stderr: redrawn in place on a terminal, a line per 10% otherwise (logs, CI),
// nothing at all when stderr is closed to it. Results never go here; they go to stdout.
export class ProgressBar {
  private readonly started = performance.now();
  private lastDraw = 0;
  private lastDecile = -1;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  update(done: number): void {
    const share = this.total === 0 ? 1 : Math.min(1, done / this.total);
    const elapsed = (performance.now() - this.started) / 1000;
    const eta = share > 0 ? (elapsed / share) * (1 - share) : NaN;
    const percent = `${(share * 100).toFixed(0).padStart(3)}%`;
    const timing = `${elapsed.toFixed(1)}s${Number.isFinite(eta) && share < 1 ? ` eta ${eta.toFixed(0)}s` : ''}`;
    const text = `${this.label} ${bar(share)} ${percent} ${formatCount(done)}/${formatCount(this.total)} ${timing}`;
    if (this.stream.isTTY) {
      const now = performance.now();
      if (now - this.lastDraw < 100 && share < 1) return;
      this.lastDraw = now;
      this.stream.write(`\r${text}\x1b[K`);
    } else {
      const decile = Math.floor(share * 10);
      if (decile === this.lastDecile) return;
      this.lastDecile = decile;
      this.stream.write(`${text}\n`);
    }
  }

  done(): void {
    this.update(this.total);
    if (this.stream.isTTY) this.stream.write('\n');
  }
}

function bar(share: number, width = 24): string {
  const filled = Math.round(share * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

function formatCount(n: number): string {
  return String(Math.floor(n));
}
