// `nfp bank info | merge | calibrate | keygen | sign`: look inside a bank, join class shards,
// calibrate a threshold, make a signing key pair and sign a bank for deployment.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

import type { Command } from 'commander';

import { FingerprintBank, describeBank, generateSigningKeys, readBank, writeBank } from '../bank/index.js';
import { ExperimentError, calibrateExperiment, checkOutPath } from '../experiment/index.js';
import { addImageOptions, asUsage, imageReadOptionsOf, layoutOf } from './options.js';
import type { ImageFlags } from './options.js';
import { parseInteger, parsePositiveInt, parseShare } from './parse.js';
import { formatTable } from './table.js';

export function registerBankCommand(program: Command): Command {
  const bank = program.command('bank').description('inspect, merge, calibrate and sign fingerprint banks');
  bank
    .command('info')
    .argument('<bank.nfp>')
    .description('header, per-class counts and an effect-size histogram')
    .option('--json', 'one JSON object')
    .option(
      '--all-classes',
      `a row for every class (by default, banks of more than ${perClassRows} classes show the classes to look at)`,
    )
    .action((path: string, options: { json?: boolean; allClasses?: boolean }) => bankInfo(path, options));
  bank
    .command('merge')
    .description('join banks fitted on different classes of one model (shards) into one bank')
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
    .command('keygen')
    .description('make an Ed25519 key pair for signing banks: <name>.key (private, mode 600) and <name>.pub')
    .requiredOption('--out <name>', 'path without extension of the two PEM files')
    .addHelpText(
      'after',
      '\nExample:\n  $ nfp bank keygen --out deploy && nfp bank sign --key deploy.key bank.nfp --out bank.nfp\n',
    )
    .action(async (options: { out: string }, cmd: Command) => {
      await asUsage(cmd, async () => {
        const [key, pub] = [`${options.out}.key`, `${options.out}.pub`];
        for (const path of [key, pub]) {
          if (existsSync(path))
            throw new ExperimentError(`Expected --out to name new files but ${path} exists`, '--out');
        }
        const pair = generateSigningKeys();
        writeFileSync(key, pair.privateKey, { mode: 0o600, flag: 'wx' });
        writeFileSync(pub, pair.publicKey, { flag: 'wx' });
        process.stdout.write(`${JSON.stringify({ privateKey: key, publicKey: pub })}\n`);
      });
    });
  bank
    .command('sign')
    .argument('<bank.nfp>', 'the bank to sign (calibrate it first: calibrating changes it and drops the signature)')
    .description('sign a bank with an Ed25519 private key, so that detectors given the public key refuse any other')
    .requiredOption('--key <key.pem>', 'the private key (PEM, PKCS#8), e.g. from nfp bank keygen')
    .requiredOption('--out <bank.nfp>', 'the signed bank (may be the same path)')
    .addHelpText(
      'after',
      '\nExample:\n  $ nfp bank sign --key deploy.key bank.nfp --out bank.nfp\n' +
        '  $ nfp detect --model m.onnx --bank bank.nfp --public-key deploy.pub image.png\n',
    )
    .action(async (path: string, options: { key: string; out: string }, cmd: Command) => {
      await asUsage(cmd, async () => {
        checkOutPath(options.out, '.nfp', '--out');
        writeBank(options.out, readBank(path), { privateKey: readFileSync(options.key) });
        const keyId = readBank(options.out).signature!.keyId;
        process.stdout.write(`${JSON.stringify({ out: options.out, keyId })}\n`);
      });
    });
  const calibrate = bank
    .command('calibrate')
    .description('set the thresholds for a target false-positive rate on held-out clean images')
    .requiredOption('--model <model>', 'the ONNX classifier the bank was fitted on')
    .requiredOption('--bank <bank.nfp>', 'the bank')
    .requiredOption('--data <path>', 'held-out clean images (IDX, .npy or a folder), not used to fit the bank')
    .option('--limit <n>', 'only the first n images of --data', parsePositiveInt)
    .option(
      '--held-out',
      'calibrate on the rows of --data that the bank records as held out from its fit (merged nfp fit --shard banks)',
    )
    .option('--seed <n>', 'seeded draws: reproducible thresholds (as a seeded nfp fit calibrates)', parseInteger)
    .option('--fpr <rate>', 'target false-positive rate, in (0, 1)', parseShare, 0.05)
    .option('--draws <n>', 'fingerprints drawn per input', parsePositiveInt, 25)
    .option('--draws-per-image <n>', 'random draws scored per clean image', parsePositiveInt, 10)
    .option(
      '--confidence',
      'calibrate for fingerprints plus the logit-margin confidence term (catches CW-L2 and DeepFool)',
    )
    .requiredOption('--out <bank.nfp>', 'the calibrated bank (may be the same path)');
  addImageOptions(calibrate).action(
    async (
      options: {
        model: string;
        bank: string;
        data: string;
        limit?: number;
        heldOut?: boolean;
        seed?: number;
        fpr: number;
        draws: number;
        drawsPerImage: number;
        confidence?: boolean;
        out: string;
      } & ImageFlags,
      cmd: Command,
    ) => {
      await asUsage(cmd, async () => {
        const result = await calibrateExperiment({
          ...options,
          confidence: options.confidence === true,
          heldOut: options.heldOut === true,
          image: imageReadOptionsOf(options),
          ...layoutOf(options),
        });
        process.stdout.write(`${JSON.stringify(result)}\n`);
      });
    },
  );
  return bank;
}

/** Classes a bank may have before `nfp bank info` summarises them instead of a row for each. */
const perClassRows = 50;

type ClassRow = ReturnType<typeof describeBank>['classes'][number];

/**
 * The classes worth a row in a large bank: not fitted, relaxed, or among the 10 with the fewest
 * distinct fingerprints below the median (the smallest families of detectors).
 */
function classesToShow(classes: ClassRow[]): ClassRow[] {
  const fitted = classes.filter((c) => c.fitted).sort((a, b) => a.family.distinct - b.family.distinct);
  const median = fitted[Math.floor((fitted.length - 1) / 2)]?.family.distinct ?? 0;
  const fewest = new Set(
    fitted
      .filter((c) => c.family.distinct < median)
      .slice(0, 10)
      .map((c) => c.class),
  );
  return classes.filter((c) => !c.fitted || c.relaxed !== undefined || fewest.has(c.class));
}

/** min / median / max of some numbers, for a summary line. */
function spread(values: number[]): string {
  if (values.length === 0) return '-';
  const sorted = [...values].sort((a, b) => a - b);
  return `${sorted[0]} / ${sorted[Math.floor((sorted.length - 1) / 2)]} / ${sorted.at(-1)}`;
}

function bankInfo(path: string, options: { json?: boolean; allClasses?: boolean }): void {
  const d = describeBank(readBank(path));
  if (options.json === true) {
    process.stdout.write(`${JSON.stringify({ file: path, ...d })}\n`);
    return;
  }
  const out = process.stdout;
  const cal = d.calibration;
  out.write(`${path}: ${d.fingerprints} fingerprints of k=${d.k} over ${d.neurons} neurons in ${d.taps.length} taps\n`);
  out.write(
    `model ${d.model.source} sha256 ${d.model.sha256.slice(0, 16)}…, ${d.model.classes} classes; ` +
      `families ${d.families.join(', ')}; created ${d.created}\n`,
  );
  out.write(
    cal
      ? `calibrated: fpr ${cal.fpr}, ${cal.draws} draws, ${cal.combine}` +
          `${cal.confidence ? ' + confidence term' : ''}, ` +
          `global threshold ${cal.global.toFixed(3)} (${cal.images} images)\n`
      : 'not calibrated\n',
  );
  out.write(
    d.signature
      ? `signed by key ${d.signature.keyId.slice(0, 16)}… (not verified here: detectors verify with --public-key)\n`
      : 'not signed\n',
  );
  if (d.duplicates > 0) {
    out.write(
      `warning: ${d.duplicates} fingerprints repeat another of their class (the bank predates distinct candidates): ` +
        'the family of detectors is smaller than the counts say; refit it\n',
    );
  }
  out.write('\n');
  const summarised = options.allClasses !== true && d.classes.length > perClassRows;
  const shown = summarised ? classesToShow(d.classes) : d.classes;
  if (summarised) {
    const fitted = d.classes.filter((c) => c.fitted);
    out.write(
      `${fitted.length} of ${d.classes.length} classes fitted; per fitted class min / median / max: ` +
        `fingerprints ${spread(fitted.map((c) => c.count))}, ` +
        `distinct ${spread(fitted.map((c) => c.family.distinct))}, ` +
        `clean images ${spread(fitted.map((c) => c.clean))}; ${fitted.filter((c) => c.relaxed).length} relaxed\n`,
    );
    out.write(
      `showing ${shown.length} classes: not fitted, relaxed, or the 10 with the fewest distinct fingerprints ` +
        'below the median (--all-classes: every class; --json: everything)\n\n',
    );
  }
  out.write(
    formatTable(
      ['class', 'fitted', 'fingerprints', 'distinct', 'neurons', `log10 draws of ${d.draws}`, 'redundancy', 'passed'],
      shown.map((c) => [
        String(c.class),
        c.fitted ? 'yes' : 'no',
        String(c.count),
        String(c.family.distinct),
        String(c.family.neurons),
        c.family.distinct > 0 ? c.family.log10Draws.toFixed(1) : '-',
        c.family.redundancy === null ? '-' : c.family.redundancy.toFixed(3),
        String(c.passed),
      ]),
    ),
  );
  out.write('\n');
  out.write(
    formatTable(
      ['class', 'clean', ...d.families.map((f) => `attacked ${f}`), 'threshold', 'note'],
      shown.map((c) => [
        String(c.class),
        String(c.clean),
        ...c.attacked.map(String),
        cal
          ? (cal.perClass[c.class] ?? cal.global).toFixed(3) + (cal.perClass[c.class] === null ? ' (global)' : '')
          : '-',
        c.relaxed ?? '',
      ]),
    ),
  );
  out.write('\nneurons used per tapped layer (all classes)\n');
  out.write(
    formatTable(
      ['tap', 'neurons', 'of', 'used'],
      d.taps.map((t) => [t.tensor, String(t.size), t.sample ? String(t.sample.of) : String(t.size), String(t.used)]),
    ),
  );
  out.write('\n|d| histogram\n');
  const most = Math.max(1, ...d.effectHistogram.map((b) => b.count));
  for (const b of d.effectHistogram) {
    const bin = `${b.from}-${Number.isFinite(b.to) ? b.to : ''}`;
    out.write(`${bin.padEnd(8)} ${String(b.count).padStart(7)} ${'#'.repeat(Math.round((40 * b.count) / most))}\n`);
  }
}
