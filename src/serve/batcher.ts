// Micro-batching: requests that arrive within a short window, or while the model is busy, share one
// model call. Each request's rows keep their own place in the batch and so their own random draws
// (the detector draws fresh fingerprints for every row); only the model call is shared.
import type { Detection } from '../detect/index.js';
import type { ImageBatch } from '../model/index.js';

interface Pending {
  data: Float32Array;
  rows: number;
  resolve: (detections: Detection[]) => void;
  reject: (error: unknown) => void;
}

export interface BatcherOptions {
  /** [C, H, W] of one row. */
  shape: readonly number[];
  /** Most rows in one model call. */
  maxRows: number;
  /** Milliseconds the first request to an idle model waits for company (0: none; requests that arrive while the
   * model is busy share the next call whatever the window). */
  windowMs: number;
  /** Rows waiting past which submit() refuses (QueueFullError). */
  queueRows: number;
  /** Called with the row count of every model call. */
  onBatch?: (rows: number) => void;
}

/** Thrown by submit() when too many rows are already waiting. */
export class QueueFullError extends Error {
  constructor(waiting: number) {
    super(`${waiting} rows are already waiting for the model; retry later`);
    this.name = 'QueueFullError';
  }
}

export class Batcher {
  private readonly queue: Pending[] = [];
  private waitingRows = 0;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private readonly per: number;

  constructor(
    private readonly score: (batch: ImageBatch) => Promise<Detection[]>,
    private readonly options: BatcherOptions,
  ) {
    this.per = options.shape.reduce((a, v) => a * v, 1);
  }

  /** Rows waiting for a model call, not counting the call running now. */
  get waiting(): number {
    return this.waitingRows;
  }

  /** Scores `rows` rows of `data` ([rows, C, H, W]) in the next model call; one Detection per row. */
  submit(data: Float32Array, rows: number): Promise<Detection[]> {
    if (this.waitingRows + rows > this.options.queueRows) return Promise.reject(new QueueFullError(this.waitingRows));
    return new Promise((resolve, reject) => {
      this.queue.push({ data, rows, resolve, reject });
      this.waitingRows += rows;
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.running || this.queue.length === 0) return;
    if (this.waitingRows >= this.options.maxRows || this.options.windowMs === 0) {
      this.flush();
    } else if (this.timer === undefined) {
      this.timer = setTimeout(() => this.flush(), this.options.windowMs);
    }
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const take: Pending[] = [];
    let rows = 0;
    // Whole requests only; the first goes whatever its size (no request holds more than the request limit).
    while (this.queue.length > 0 && (take.length === 0 || rows + this.queue[0]!.rows <= this.options.maxRows)) {
      const p = this.queue.shift()!;
      take.push(p);
      rows += p.rows;
    }
    this.waitingRows -= rows;
    this.running = true;
    void this.run(take, rows).finally(() => {
      this.running = false;
      // What arrived meanwhile has waited for the model already: it goes now, without a window.
      if (this.queue.length > 0) this.flush();
    });
  }

  private async run(take: Pending[], rows: number): Promise<void> {
    this.options.onBatch?.(rows);
    let data: Float32Array;
    if (take.length === 1) data = take[0]!.data;
    else {
      data = new Float32Array(rows * this.per);
      let at = 0;
      for (const p of take) {
        data.set(p.data, at);
        at += p.data.length;
      }
    }
    try {
      const detections = await this.score({ data, dims: [rows, ...this.options.shape] });
      let at = 0;
      for (const p of take) {
        p.resolve(detections.slice(at, at + p.rows));
        at += p.rows;
      }
    } catch (error) {
      for (const p of take) p.reject(error);
    }
  }
}
