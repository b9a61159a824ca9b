// `nfp info`: what the installed addon can do on this machine.
import { availableParallelism, cpus, platform, arch } from 'node:os';

import { addonSource, info } from '../kernels.js';
import { version } from '../version.js';

export interface InfoReport {
  version: string;
  node: string;
  platform: string;
  cpu: string;
  cores: number;
  backend: string;
  backendMessage: string;
  threads: number;
  cuda: { compiled: boolean; usable: boolean; devices: number; deviceName: string; runtime: string; reason: string };
  onnxruntime: string;
  compiler: string;
  /** The nfp.node loaded: a local build, or the prebuilt binary the package ships. */
  addon: { path: string; prebuilt: boolean };
}

export async function collectInfo(): Promise<InfoReport> {
  const native = info();
  // onnxruntime-node is loaded only here: `nfp info` reports it, the kernels do not need it.
  const ort = await import('onnxruntime-node');
  return {
    version,
    node: process.version,
    platform: `${platform()}-${arch()}`,
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: availableParallelism(),
    backend: native.backend,
    backendMessage: native.backendMessage,
    threads: native.threads,
    cuda: {
      compiled: native.cuda.compiled,
      usable: native.cuda.usable,
      devices: native.cuda.devices,
      deviceName: native.cuda.deviceName,
      runtime: native.cuda.runtime,
      reason: native.cuda.reason,
    },
    onnxruntime: ort.env.versions.node ?? ort.env.versions.common,
    compiler: native.compiler ?? 'unknown',
    addon: { ...addonSource },
  };
}

export async function infoCommand(options: { json?: boolean }): Promise<void> {
  const r = await collectInfo();
  if (options.json === true) {
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return;
  }
  const cuda = r.cuda.compiled
    ? `compiled (runtime ${r.cuda.runtime}); ${r.cuda.usable ? `using ${r.cuda.deviceName}` : r.cuda.reason}`
    : r.cuda.reason;
  const rows: Array<[string, string]> = [
    ['neural-fingerprints', r.version],
    ['node', `${r.node} (${r.platform})`],
    ['cpu', `${r.cpu}, ${r.cores} cores`],
    ['backend', `${r.backend} (${r.backendMessage})`],
    ['threads', String(r.threads)],
    ['cuda', cuda],
    ['onnxruntime-node', r.onnxruntime],
    ['compiler', r.compiler],
    ['addon', `${r.addon.path} (${r.addon.prebuilt ? 'prebuilt' : 'built here'})`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  process.stdout.write(`${rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')}\n`);
}
