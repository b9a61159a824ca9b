// deploy/kubernetes: the fit and aggregate Jobs validate against the Kubernetes schema (kubernetes-models,
// the API's OpenAPI schema as a maintained package; `kubectl apply --dry-run=client` needs a cluster
// to fetch it from), and what they ask of `nfp` is what the CLI offers: an indexed fit whose shard
// count is the Job's, options that exist, the aggregate step calibrating with the fit's data and seed.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { expect } from 'chai';
import { Command } from 'commander';
import { parseAllDocuments } from 'yaml';

import { registerBankCommand } from '../../src/cli/bank.js';
import { registerFitCommand } from '../../src/cli/fit.js';
import { packageRoot } from '../../src/paths.js';

const folder = join(packageRoot, 'deploy', 'kubernetes');

interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: Array<{ name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
}

interface JobManifest {
  apiVersion: string;
  kind: string;
  spec: {
    completionMode?: string;
    completions?: number;
    parallelism?: number;
    template: {
      spec: {
        securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
        initContainers?: Container[];
        containers: Container[];
      };
    };
  };
}

function manifests(file: string): JobManifest[] {
  return parseAllDocuments(readFileSync(join(folder, file), 'utf8')).map((d) => d.toJS() as JobManifest);
}

/** The value after `option` in args. */
function optionValue(args: string[], option: string): string | undefined {
  const i = args.indexOf(option);
  return i < 0 ? undefined : args[i + 1];
}

/** The long options a command offers. */
function optionsOf(command: Command): string[] {
  return command.options.map((o) => o.long!);
}

describe('deploy/kubernetes', () => {
  const fit = manifests('fit-job.yaml');
  const aggregate = manifests('aggregate-job.yaml');

  it('Jobs that validate against the Kubernetes schema (kubernetes-models)', async function () {
    let Job: typeof import('kubernetes-models/batch/v1/Job').Job;
    try {
      ({ Job } = await import('kubernetes-models/batch/v1/Job'));
    } catch (error) {
      // A dev dependency: absent from production installs, where this test has nothing to check against.
      console.log(`      skipped: kubernetes-models is not installed (${(error as Error).message.split('\n')[0]})`);
      this.skip();
    }
    for (const doc of [...fit, ...aggregate]) {
      expect(doc.apiVersion).to.equal('batch/v1');
      expect(doc.kind).to.equal('Job');
      new Job(doc as never).validate();
    }
    const broken = { ...fit[0]!, spec: { ...fit[0]!.spec, completions: 'eight' } };
    expect(() => new Job(broken as never).validate()).to.throw(/completions/);
  });

  it('an indexed fit Job whose pods fit shard JOB_COMPLETION_INDEX of completions, resumably, as non-root', () => {
    expect(fit).to.have.length(1);
    const job = fit[0]!;
    expect(job.spec.completionMode).to.equal('Indexed');
    const pod = job.spec.template.spec;
    expect(pod.securityContext?.runAsNonRoot).to.equal(true);
    expect(pod.securityContext?.runAsUser).to.be.above(0);
    const [container] = pod.containers;
    const args = container!.args!;
    expect(args[0]).to.equal('fit');
    expect(optionValue(args, '--shard')).to.equal(`env/${job.spec.completions}`);
    expect(optionValue(args, '--seed')).to.match(/^\d+$/);
    expect(optionValue(args, '--checkpoints')).to.match(/^\/out\//);
    expect(optionValue(args, '--out')).to.equal('/out/shard-$(JOB_COMPLETION_INDEX).nfp');
    const index = container!.env?.find((e) => e.name === 'JOB_COMPLETION_INDEX');
    expect(index?.valueFrom?.fieldRef?.fieldPath).to.equal(
      "metadata.annotations['batch.kubernetes.io/job-completion-index']",
    );
    const offered = optionsOf(registerFitCommand(new Command()));
    for (const option of args.filter((a) => a.startsWith('--'))) expect(offered, option).to.include(option);
  });

  it('an aggregate Job that merges the shards and calibrates on their held-out rows with the fit data and seed', () => {
    expect(aggregate).to.have.length(1);
    const pod = aggregate[0]!.spec.template.spec;
    expect(pod.securityContext?.runAsNonRoot).to.equal(true);
    expect(pod.initContainers?.[0]?.args?.join(' ')).to.match(
      /bank merge \/out\/shard-\*\.nfp --out \/out\/merged\.nfp/,
    );
    const args = pod.containers[0]!.args!;
    expect(args.slice(0, 2)).to.deep.equal(['bank', 'calibrate']);
    expect(args).to.include('--held-out');
    expect(optionValue(args, '--bank')).to.equal('/out/merged.nfp');
    const fitArgs = fit[0]!.spec.template.spec.containers[0]!.args!;
    for (const option of ['--model', '--data', '--seed'])
      expect(optionValue(args, option)).to.equal(optionValue(fitArgs, option));
    const calibrate = registerBankCommand(new Command()).commands.find((c) => c.name() === 'calibrate')!;
    const offered = optionsOf(calibrate);
    for (const option of args.filter((a) => a.startsWith('--'))) expect(offered, option).to.include(option);
  });

  it('a multi-stage Dockerfile whose image runs as a non-root user', () => {
    const dockerfile = readFileSync(join(folder, 'Dockerfile'), 'utf8');
    expect(dockerfile.match(/^FROM /gm)).to.have.length.at.least(2);
    expect(dockerfile).to.match(/^FROM .* AS build$/m);
    expect(dockerfile).to.match(/^COPY --from=build /m);
    const user = /^USER (\S+)$/m.exec(dockerfile)?.[1];
    expect(user).to.not.equal(undefined);
    expect(user).to.not.match(/^(0|root)(:|$)/);
  });
});
