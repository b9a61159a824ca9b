// `nfp layers <model.onnx>`: every node output with its per-image shape and neuron count, so a
// user can choose taps by name.
import { Classifier } from '../model/index.js';
import type { Layout } from '../model/index.js';
import { formatTable } from './table.js';

export async function layersCommand(
  model: string,
  options: { json?: boolean; inputShape?: number[]; layout?: Layout },
): Promise<void> {
  const classifier = await Classifier.load(model, {
    ...(options.inputShape ? { inputShape: options.inputShape } : {}),
    ...(options.layout ? { layout: options.layout } : {}),
  });
  try {
    const layers = await classifier.layers();
    if (options.json === true) {
      for (const l of layers) process.stdout.write(`${JSON.stringify(l)}\n`);
      return;
    }
    const auto = new Set(classifier.taps.map((t) => t.tensor));
    const batch = classifier.fixedBatch ?? 'N';
    const shape = classifier.inputShape.join(', ');
    const input = `${classifier.inputName} [${batch}, ${shape}] ${classifier.layout.toUpperCase()}`;
    process.stdout.write(
      `${classifier.source}  sha256 ${classifier.sha256.slice(0, 16)}…  input ${input}  ` +
        `${classifier.classes} classes\n\n`,
    );
    process.stdout.write(
      formatTable(
        ['name', 'op', 'output', 'shape', 'neurons', 'auto tap'],
        layers.map((l) => [
          l.name,
          l.opType,
          l.output,
          l.shape ? `[${l.shape.join(', ')}]` : `(${l.dtype ?? '?'})`,
          l.neurons?.toString() ?? '',
          auto.has(l.output) ? 'yes' : '',
        ]),
      ),
    );
  } finally {
    await classifier.release();
  }
}
