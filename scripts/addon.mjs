// Builds the native addon, nfp.node, in one of two ways:
//   build     from source into build/addon. `npm install` in a clone runs it (through `prepare`), and
//             `npm run build:addon` in an installed package is the fallback where the shipped binary
//             does not fit (another platform, an older glibc) or where the CUDA backend is wanted.
//             NFP_CUDA=AUTO (the default: CUDA compiled in when nvcc is found), ON or OFF; --clean
//             rebuilds from nothing.
//   prebuild  the binary the package ships: CPU only, libstdc++ linked in (only glibc is needed at run
//             time), into prebuilds/<platform>/nfp.node with nfp.json saying what it needs. `npm pack`
//             runs it (through `prepack`). Linux x64 with glibc only, for now.
// src/native.ts loads a local build first, then the prebuilt binary.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const cmakeJs = createRequire(import.meta.url).resolve('cmake-js/bin/cmake-js');
const [mode, ...flags] = process.argv.slice(2);

function run(command, args, options = {}) {
  const r = spawnSync(command, args, { cwd: root, stdio: 'inherit', ...options });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    process.stderr.write(`neural-fingerprints: ${command} ${args.join(' ')} failed (exit ${r.status})\n`);
    process.exit(r.status ?? 1);
  }
  return r;
}

function output(command, args) {
  const r = spawnSync(command, args, { cwd: root, encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${r.error ?? r.stderr}`);
  return r.stdout;
}

/** The prebuilds/ folder name for this machine: linux-x64-glibc, linux-x64-musl, darwin-arm64, ... */
function platformTag() {
  if (process.platform !== 'linux') return `${process.platform}-${process.arch}`;
  const glibc = process.report.getReport().header.glibcVersionRuntime;
  return `linux-${process.arch}-${glibc ? 'glibc' : 'musl'}`;
}

function build() {
  const cuda = process.env.NFP_CUDA;
  if (cuda !== undefined && !['AUTO', 'ON', 'OFF'].includes(cuda)) {
    process.stderr.write(`neural-fingerprints: expected AUTO, ON or OFF for NFP_CUDA but received ${cuda}\n`);
    process.exit(2);
  }
  const verb = flags.includes('--clean') ? 'rebuild' : 'compile';
  run(process.execPath, [cmakeJs, verb, '--out', 'build/addon', ...(cuda ? [`--CDNFP_CUDA=${cuda}`] : [])]);
}

function prebuild() {
  const tag = platformTag();
  if (tag !== 'linux-x64-glibc') {
    process.stderr.write(
      `neural-fingerprints: no prebuilt addon for ${tag} (only linux-x64-glibc is prebuilt): the package will ` +
        'build from source where it is installed (npm run build:addon)\n',
    );
    return;
  }
  run(process.execPath, [
    cmakeJs,
    'compile',
    '--out',
    'build/prebuild',
    '--CDNFP_CUDA=OFF',
    '--CDNFP_STATIC_LIBSTDCXX=ON',
  ]);
  const built = join(root, 'build', 'prebuild', 'Release', 'nfp.node');
  // What the binary needs from the machine it lands on: shared libraries, and the newest glibc symbol.
  const needed = [...output('readelf', ['-d', built]).matchAll(/\(NEEDED\)\s+Shared library: \[(.+)\]/g)].map(
    (m) => m[1],
  );
  const foreign = needed.filter((lib) => !/^(libc|libm|libgcc_s|libpthread|libdl|ld-linux-x86-64)\.so/.test(lib));
  if (foreign.length > 0) throw new Error(`the prebuilt addon needs ${foreign.join(', ')}: it must need only glibc`);
  const glibc = [...output('objdump', ['-T', built]).matchAll(/GLIBC_(\d+)\.(\d+)(?:\.\d+)?/g)]
    .map((m) => [Number(m[1]), Number(m[2])])
    .reduce((a, b) => (b[0] > a[0] || (b[0] === a[0] && b[1] > a[1]) ? b : a), [2, 17]);
  // It must load and run on the CPU backend before it ships.
  const check = `const a = require(${JSON.stringify(built)}); const i = a.info();
    if (i.cuda.compiled) throw new Error('CUDA compiled in'); console.log(i.compiler ?? '');`;
  const compiler = output(process.execPath, ['-e', check]).trim();
  const dir = join(root, 'prebuilds', tag);
  mkdirSync(dir, { recursive: true });
  const bytes = readFileSync(built);
  const manifest = {
    platform: 'linux',
    arch: 'x64',
    libc: 'glibc',
    glibc: `${glibc[0]}.${glibc[1]}`,
    napi: 8,
    cuda: false,
    needs: needed,
    compiler,
    sha256: createHash('sha256').update(bytes).digest('hex'),
  };
  // Written beside and renamed, so a loader never sees half a binary.
  copyFileSync(built, join(dir, 'nfp.node.tmp'));
  renameSync(join(dir, 'nfp.node.tmp'), join(dir, 'nfp.node'));
  writeFileSync(join(dir, 'nfp.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  process.stderr.write(
    `neural-fingerprints: prebuilt addon prebuilds/${tag}/nfp.node (${(bytes.length / 1e6).toFixed(1)} MB, ` +
      `glibc >= ${manifest.glibc}, CPU only)\n`,
  );
}

if (mode === 'build') build();
else if (mode === 'prebuild') prebuild();
else {
  process.stderr.write('usage: node scripts/addon.mjs build [--clean] | prebuild\n');
  process.exit(2);
}
