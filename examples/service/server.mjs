// A service of your own that classifies images and refuses those that look adversarially manipulated.
// The detector is loaded once, at start; every request calls detect() on it. Run it with
//   NFP_BANK=bank.nfp node --initial-old-space-size=64 server.mjs     (PORT, HOST and NFP_MODEL optional)
// (the flag keeps V8's full collections off the tail latency; the package's README says why)
// where bank.nfp is a calibrated bank for the model (npx nfp fit ...; see the package's README).
import Fastify from 'fastify';
import { FingerprintDetector, shippedModel } from 'neural-fingerprints';

const model = process.env.NFP_MODEL ?? shippedModel('fmnist-cnn'); // the committed Fashion-MNIST CNN
const bank = process.env.NFP_BANK;
if (!bank) throw new Error('Set NFP_BANK to a calibrated bank (.nfp) for the model');
const detector = await FingerprintDetector.load({ model, bank });

const app = Fastify({ logger: true, bodyLimit: 4 * 2 ** 20 });
app.addContentTypeParser(['image/png', 'image/jpeg', 'image/webp'], { parseAs: 'buffer' }, (_request, body, done) =>
  done(null, body),
);
app.addHook('onClose', () => detector.release());

app.post('/classify', async (request, reply) => {
  // Image bytes are decoded by the detector itself: bounded, off the main thread, resized to the model's input.
  const [d] = await detector.detect(new Uint8Array(request.body));
  // Fails closed: an image it cannot judge (it does not decode, say) comes back attacked, with the reason.
  if (d.rejected) return reply.status(422).send({ error: d.rejected });
  if (d.attacked) return reply.status(422).send({ error: 'the image looks adversarially manipulated', score: d.score });
  return { label: d.label, score: d.score, threshold: d.threshold };
});

for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => app.close());
await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 3000) });
