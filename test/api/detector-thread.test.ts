// The service's detector on a worker thread (src/serve/detector-thread.ts): the same detections as in
// process, load failures as in process, and fail-closed behaviour when the thread dies.
import { join } from 'node:path';

import { expect } from 'chai';

import { loadFashionMnist } from '../../src/data/index.js';
import { FingerprintDetector } from '../../src/detect/index.js';
import { packageRoot } from '../../src/paths.js';
import { DetectorThread, createService } from '../../src/serve/index.js';
import { writeSmallBank } from '../reference/small-bank.js';
import { useTempDir } from '../reference/temp-dir.js';

const modelPath = join(packageRoot, 'models', 'fmnist-cnn.onnx');

describe('DetectorThread (the service on a thread of its own)', function () {
  this.timeout(120_000);
  const dir = useTempDir('nfp-thread-');
  const bank = () => join(dir(), 'bank.nfp');
  const test = loadFashionMnist({ split: 'test' });
  const rows = (n: number) => ({ data: test.data.slice(0, n * 784), dims: [n, 1, 28, 28] });

  before(async () => {
    await writeSmallBank(modelPath, bank());
  });

  it('detects as FingerprintDetector does in process (seeded draws), and reads the same model facts', async () => {
    const options = { model: modelPath, bank: bank(), threshold: 0, draws: 5, seed: 7 };
    const local = await FingerprintDetector.load(options);
    const thread = await DetectorThread.start({ ...options, allowSpinning: false });
    try {
      expect(thread.classifier).to.deep.equal({
        inputShape: local.classifier.inputShape,
        layout: local.classifier.layout,
        classes: local.classifier.classes,
      });
      expect(thread.inputRange).to.deep.equal(local.inputRange);
      for (let c = 0; c < 10; c++) expect(thread.thresholdOf(c)).to.equal(local.thresholdOf(c));
      expect(() => thread.thresholdOf(10)).to.throw(RangeError, /class in \[0, 10\)/);
      const batch = rows(12);
      // A NaN pixel fails closed on both sides, with the same reason.
      batch.data[3 * 784 + 5] = Number.NaN;
      expect(await thread.detect(batch)).to.deep.equal(await local.detect(batch));
      expect(batch.data.length, 'the caller keeps its rows').to.equal(12 * 784);
    } finally {
      await Promise.all([thread.release(), local.release()]);
    }
  });

  it('fails to start as FingerprintDetector.load fails, and refuses a bank object', async () => {
    // The small bank is not calibrated: without a threshold the start fails as thresholdOf would.
    const error = await DetectorThread.start({ model: modelPath, bank: bank() }).catch((e: Error) => e);
    expect(error).to.be.instanceOf(Error);
    expect((error as Error).message).to.match(/calibrat/i);
    const missing = await DetectorThread.start({ model: modelPath, bank: join(dir(), 'none.nfp') }).catch(
      (e: Error) => e,
    );
    expect((missing as Error).message).to.include('none.nfp');
    const local = await FingerprintDetector.load({ model: modelPath, bank: bank(), threshold: 0 });
    try {
      const bankObject = (local as unknown as { bankNow: object }).bankNow;
      const refused = await DetectorThread.start({ model: modelPath, bank: bankObject as never }).catch(
        (e: Error) => e,
      );
      expect(refused).to.be.instanceOf(TypeError);
    } finally {
      await local.release();
    }
  });

  it('fails closed when the thread dies: detect() rejects, /healthz answers 503, the service keeps answering', async () => {
    const thread = await DetectorThread.start({ model: modelPath, bank: bank(), threshold: 0 });
    const { app } = createService(thread);
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      expect((await fetch(`${url}/healthz`)).status).to.equal(200);
      await (thread as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
      expect(thread.alive).to.equal(false);
      const error = await thread.detect(rows(1)).catch((e: Error) => e);
      expect((error as Error).message).to.match(/inference thread stopped/);
      const health = await fetch(`${url}/healthz`);
      expect(health.status).to.equal(503);
      const r = await fetch(`${url}/v1/detect?dims=1,1,28,28`, {
        method: 'POST',
        body: Buffer.from(rows(1).data.buffer),
        headers: { 'content-type': 'application/octet-stream' },
      });
      expect(r.status).to.equal(500);
      expect(((await r.json()) as { error: { code: string } }).error.code).to.equal('INTERNAL');
    } finally {
      await app.close();
      await thread.release();
      await thread.release(); // twice is harmless
    }
    const after = await thread.detect(rows(1)).catch((e: Error) => e);
    expect((after as Error).message).to.match(/after release/);
  });
});
