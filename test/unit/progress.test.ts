// Progress bars off a terminal (logs, CI) write a line when a bar completes and at most one per
// interval while it runs; on a terminal they redraw one line in place and end it once.
import { expect } from 'chai';

import { ProgressBar, stageBars } from '../../src/cli/progress.js';

function sink(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, write: (chunk: string) => writes.push(chunk) > 0 } };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('progress bars', () => {
  it('off a terminal, a bar of 1,000 quick updates writes one line, when it completes', () => {
    const { writes, stream } = sink(false);
    const bar = new ProgressBar('pgd', 1000, stream as unknown as NodeJS.WriteStream);
    for (let i = 0; i <= 1000; i++) bar.update(i);
    bar.done();
    bar.done();
    expect(writes).to.have.length(1);
    expect(writes[0]).to.match(/^pgd \[#{24}\] 100% 1000\/1000 \d+\.\ds\n$/);
  });

  it('off a terminal, a slow bar writes a line per interval as well', async () => {
    const { writes, stream } = sink(false);
    const bar = new ProgressBar('fit', 4, stream as unknown as NodeJS.WriteStream, 40);
    for (let i = 1; i <= 4; i++) {
      await sleep(60);
      bar.update(i);
    }
    expect(writes).to.have.length(4);
    expect(writes.map((w) => w.match(/ (\d+)\/4 /)?.[1])).to.deep.equal(['1', '2', '3', '4']);
    expect(writes.every((w) => w.endsWith('\n') && !w.includes('\r'))).to.equal(true);
  });

  it('on a terminal, redraws in place and ends the line once', () => {
    const { writes, stream } = sink(true);
    const bar = new ProgressBar('clean', 3, stream as unknown as NodeJS.WriteStream);
    bar.update(0);
    bar.update(3);
    bar.done();
    expect(writes.filter((w) => w.startsWith('\r'))).to.have.length(2);
    expect(writes.filter((w) => w === '\n')).to.have.length(1);
    expect(writes.at(-1)).to.equal('\n');
  });

  it('stage bars of a demo-sized run write one line per stage off a terminal', () => {
    const { writes, stream } = sink(false);
    const write = process.stderr.write;
    const isTTY = process.stderr.isTTY;
    process.stderr.write = stream.write as typeof process.stderr.write;
    process.stderr.isTTY = false;
    try {
      const progress = stageBars();
      for (const [stage, total] of [
        ['clean', 1],
        ['pgd', 60],
        ['fgsm', 60],
      ] as const)
        for (let done = 0; done <= total; done += 1) progress(stage, done, total);
    } finally {
      process.stderr.write = write;
      process.stderr.isTTY = isTTY;
    }
    expect(writes.map((w) => w.split(' ')[0])).to.deep.equal(['clean', 'pgd', 'fgsm']);
  });
});
