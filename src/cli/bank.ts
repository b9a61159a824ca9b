// `nfp bank info | merge | calibrate`: look inside a bank, join class shards, calibrate a threshold.
import type { Command } from 'commander';

import { FingerprintBank, readBank, writeBank } from '../bank/index.js';
import { loadTensorFile } from '../data/index.js';
import { FingerprintDetector } from '../detect/index.js';
import { parsePositiveInt, parseShare } from './parse.js';
import { formatTable } from './table.js';

export function registerBankCommand(program: Command): Command {
  const bank = program.command('bank').description('inspect, merge and calibrate fingerprint banks');
  bank
    .command('info')
    .argument('<bank.nfp>')
    .description('header, per-class counts and an effect-size histogram')
    .option('--json', 'one JSON object')
    .action((path: string, options: { json?: boolean }) => bankInfo(path, options));
  bank
    .command('merge')
    .argument('<shards...>', 'banks of the same model, taps and settings, each fitting different classes')
    .requiredOption('--out <bank.nfp>', 'the merged bank (uncalibrated: run nfp bank calibrate)')
    .addHelpText(
      'after',
      '\nExample (shards built in parallel, e.g. as a Kubernetes indexed Job):\n  $ nfp bank merge shard-0.nfp ' +
        'shard-1.nfp shard-2.nfp --out bank.nfp\n',
    )
    .action((shards: string[], options: { out: string }) => {
      const merged = FingerprintBank.merge(shards.map((p) => readBank(p)));
      writeBank(options.out, merged);
      const fittedClasses = merged.header.classes.filter((c) => c.fitted).length;
      const summary = { out: options.out, shards: shards.length, fingerprints: merged.fingerprints, fittedClasses };
      process.stdout.write(`${JSON.stringify(summary)}\n`);
    });
  bank
    .command('calibrate')
    .requiredOption('--model <model>', 'the ONNX classifier the bank was fitted on')
    .requiredOption('--bank <bank.nfp>', 'the bank')
    .requiredOption('--data <path>', 'held-out clean images (IDX, .npy or a folder), not used to fit the bank')
    .option('--fpr <rate>', 'target false-positive rate', parseShare, 0.05)
    .option('--draws <n>', 'fingerprints drawn per input', parsePositiveInt, 25)
    .option('--draws-per-image <n>', 'random draws scored per clean image', parsePositiveInt, 10)
    .option(
      '--confidence',
      'calibrate for fingerprints plus the logit-margin confidence term (catches CW-L2 and DeepFool)',
    )
    .requiredOption('--out <bank.nfp>', 'the calibrated bank (may be the same path)')
    .action(
      async (options: {
        model: string;
        bank: string;
        data: string;
        fpr: number;
        draws: number;
        drawsPerImage: number;
        confidence?: boolean;
        out: string;
      }) => {
        const detector = await FingerprintDetector.load({
          model: options.model,
          bank: options.bank,
          draws: options.draws,
          confidence: options.confidence === true,
        });
        try {
          const clean = await loadTensorFile(options.data);
          const calibration = await detector.calibrate(clean, {
            fpr: options.fpr,
            drawsPerImage: options.drawsPerImage,
          });
          detector.save(options.out);
          process.stdout.write(`${JSON.stringify({ out: options.out, ...calibration })}\n`);
        } finally {
          await detector.release();
        }
      },
    );
  return bank;
}

function bankInfo(path: string, options: { json?: boolean }): void {
  const bank = readBank(path);
  const h = bank.header;
  // Effect sizes |d| in bins of 0.5 from 1.5 up (relaxed classes may hold smaller ones).
  const edges = [0, 1.5, 2, 2.5, 3, 3.5, 4, 5, Infinity];
  const histogram = edges.slice(0, -1).map((lo, i) => ({
    from: lo,
    to: edges[i + 1]!,
    count: bank.arrays.effect.filter((d) => d >= lo && d < edges[i + 1]!).length,
  }));
  const summary = {
    file: path,
    model: h.model,
    taps: h.taps,
    neurons: h.neurons,
    k: h.k,
    families: h.families,
    fingerprints: bank.fingerprints,
    fit: h.fit,
    calibration: h.calibration ?? null,
    created: h.created,
    classes: h.classes.map((c, i) => ({ class: i, ...c })),
    effectHistogram: histogram,
  };
  if (options.json === true) {
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return;
  }
  const out = process.stdout;
  out.write(
    `${path}: ${bank.fingerprints} fingerprints of ` +
      `k=${h.k} over ${h.neurons} neurons (${h.taps.map((t) => `${t.tensor} ${t.size}`).join(', ')})\n`,
  );
  out.write(
    `model ${h.model.source} sha256 ${h.model.sha256.slice(0, 16)}…, ${h.model.classes} classes; ` +
      `families ${h.families.join(', ')}; created ${h.created}\n`,
  );
  out.write(
    h.calibration
      ? `calibrated: fpr ${h.calibration.fpr}, ${h.calibration.draws} draws, ${h.calibration.combine}` +
          `${h.calibration.confidence ? ' + confidence term' : ''}, ` +
          `global threshold ${h.calibration.global.toFixed(3)} (${h.calibration.images} images)\n`
      : 'not calibrated\n',
  );
  out.write('\n');
  out.write(
    formatTable(
      [
        'class',
        'fitted',
        'fingerprints',
        'passed',
        'clean',
        ...h.families.map((f) => `attacked ${f}`),
        'threshold',
        'note',
      ],
      h.classes.map((c, i) => [
        String(i),
        c.fitted ? 'yes' : 'no',
        String(c.count),
        String(c.passed),
        String(c.clean),
        ...c.attacked.map(String),
        h.calibration
          ? (h.calibration.perClass[i] ?? h.calibration.global).toFixed(3) +
            (h.calibration.perClass[i] === null ? ' (global)' : '')
          : '-',
        c.relaxed ?? '',
      ]),
    ),
  );
  out.write('\n|d| histogram\n');
  const most = Math.max(1, ...histogram.map((b) => b.count));
  for (const b of histogram) {
    const bin = `${b.from}-${Number.isFinite(b.to) ? b.to : ''}`;
    out.write(`${bin.padEnd(8)} ${String(b.count).padStart(7)} ${'#'.repeat(Math.round((40 * b.count) / most))}\n`);
  }
}
