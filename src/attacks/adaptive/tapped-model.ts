// A GradientModel as the adaptive attacks need it: the attack interface plus a forward pass that
// returns the tapped activations (the bank's neurons) with the logits.
import type { GradientModel } from '../../autodiff/index.js';
import type { TappedAttackModel } from './adaptive-pgd.js';

/** The model, loaded with the bank's taps (`taps: bank.tapRequests`), for AdaptivePGD and rejection sampling. */
export function tappedModel(model: GradientModel): TappedAttackModel {
  return {
    inputShape: model.inputShape,
    layout: model.layout,
    classes: model.classes,
    neurons: model.neurons,
    logits: (images) => model.logits(images),
    gradient: (images, request) => model.gradient(images, request),
    forward: async (images) => {
      const { logits, activations } = await model.classifier.run(images);
      return { logits, activations };
    },
  };
}
