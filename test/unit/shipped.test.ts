// The models the package ships, found by name from wherever the package is installed.
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { expect } from 'chai';

import { shippedModel, shippedModels } from '../../src/index.js';
import { packageRoot } from '../../src/paths.js';

describe('shipped models', () => {
  it('lists the committed models and gives each one its absolute path', () => {
    expect(shippedModels()).to.deep.equal(['fmnist-cnn', 'fmnist-resnet', 'fmnist-vit']);
    for (const name of shippedModels()) {
      expect(shippedModel(name)).to.equal(join(packageRoot, 'models', `${name}.onnx`));
      expect(existsSync(shippedModel(name))).to.equal(true);
    }
  });

  it('refuses a name it does not ship, saying which it does', () => {
    for (const name of ['resnet50', '../package', 'fmnist-cnn.onnx', ''])
      expect(() => shippedModel(name), name).to.throw(
        RangeError,
        /Expected one of fmnist-cnn, fmnist-resnet, fmnist-vit/,
      );
  });
});
