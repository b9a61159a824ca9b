// A small uncalibrated bank for the committed CNN, fitted in seconds on the shipped test set, for tests
// that need a bank to detect with (pass a threshold) or to calibrate, not a good detector.
import { FGSM } from '../../src/attacks/index.js';
import { GradientModel } from '../../src/autodiff/index.js';
import { buildBank, writeBank } from '../../src/bank/index.js';
import { loadFashionMnist } from '../../src/data/index.js';
import type { TapSpec } from '../../src/model/index.js';

/** Fits and writes a bank for models/fmnist-cnn.onnx with `taps` ('default': the model card's 54,602 neurons). */
export async function writeSmallBank(modelPath: string, path: string, taps: TapSpec = 'default'): Promise<void> {
  const test = loadFashionMnist({ split: 'test' });
  const rows = 600;
  const model = await GradientModel.load(modelPath, { taps, batchSize: 128 });
  try {
    const bank = await buildBank({
      model,
      images: { data: test.data.subarray(0, rows * 784), dims: [rows, 1, 28, 28] },
      labels: test.labels.subarray(0, rows),
      families: [{ name: 'fgsm', attack: new FGSM({ eps: 0.1 }), settings: { eps: 0.1 } }],
      cleanPerClass: 20,
      attackedPerClass: 20,
      attackMode: 'untargeted',
      screen: { k: 1, candidates: 500, topK: 50 },
      seed: 1,
    });
    writeBank(path, bank);
  } finally {
    await model.release();
  }
}
