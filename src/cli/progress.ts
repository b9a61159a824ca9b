// A progress bar on stderr: redrawn in place on a terminal; otherwise (logs, CI) one line when it
// completes and one every `interval` ms while it runs, so a log holds a line per stage rather than
// one per update. Results never go here; they go to stdout.
import type { BuildProgress } from '../bank/index.js';

export class ProgressBar {
  private readonly started = performance.now();
  private lastDraw = 0;
  private lastLine: number;
  private finished = false;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly stream: Pick<NodeJS.WriteStream, 'write' | 'isTTY'> = process.stderr,
    /** Off a terminal: the least time between two lines of a bar still running, in ms. */
    private readonly interval = 10_000,
  ) {
    this.lastLine = this.started;
  }

  update(done: number): void {
    if (this.finished) return;
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
      const now = performance.now();
      if (share < 1 && now - this.lastLine < this.interval) return;
      this.lastLine = now;
      this.stream.write(`${text}\n`);
    }
    if (share >= 1) this.finish();
  }

  done(): void {
    this.update(this.total);
  }

  private finish(): void {
    this.finished = true;
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

/** A progress handler for (stage, done, total) events: one bar per stage, closed when it completes. */
export function stageBars(): (stage: string, done: number, total: number) => void {
  const bars = new Map<string, ProgressBar>();
  return (stage, done, total) => {
    const bar = bars.get(stage) ?? new ProgressBar(stage, total);
    bars.set(stage, bar);
    bar.update(done);
    if (done >= total) bar.done();
  };
}

/** A progress handler for bank fitting: a bar per attack run, and one over the classes. */
export function fitBars(): (p: BuildProgress) => void {
  let overall: ProgressBar | undefined;
  let attackBar: ProgressBar | undefined;
  let key = '';
  return (p) => {
    overall ??= new ProgressBar('classes', p.classesTotal);
    if (p.stage === 'attack' && p.total !== undefined) {
      const now = `${p.class}:${p.family}`;
      if (now !== key) {
        attackBar?.done();
        key = now;
        attackBar = new ProgressBar(`${p.family} ${p.class < 0 ? 'untargeted' : `-> class ${p.class}`}`, p.total);
      }
      attackBar!.update(p.done ?? 0);
    } else if (p.stage === 'done') {
      attackBar?.done();
      attackBar = undefined;
      key = '';
      overall.update(p.classesDone);
      if (p.classesDone >= p.classesTotal) overall.done();
    }
  };
}
