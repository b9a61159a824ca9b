// The models the package ships (models/*.onnx with their cards), found from wherever it is installed.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import { packageRoot } from '../paths.js';

/** Names of the shipped models: ['fmnist-cnn', 'fmnist-resnet', 'fmnist-vit']. */
export function shippedModels(): string[] {
  return readdirSync(join(packageRoot, 'models'))
    .filter((f) => f.endsWith('.onnx'))
    .map((f) => f.slice(0, -'.onnx'.length))
    .sort();
}

/**
 * The absolute path of a shipped model, e.g. `shippedModel('fmnist-cnn')`: a Fashion-MNIST classifier
 * (input [N, 1, 28, 28] in [0, 1]) with its model card beside it. Also importable as a path:
 * `import.meta.resolve('neural-fingerprints/models/fmnist-cnn.onnx')`.
 */
export function shippedModel(name: string): string {
  const path = join(packageRoot, 'models', `${name}.onnx`);
  if (!/^[\w.-]+$/.test(name) || !existsSync(path))
    throw new RangeError(`Expected one of ${shippedModels().join(', ')} for name but received ${JSON.stringify(name)}`);
  return path;
}
