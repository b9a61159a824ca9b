// `npm run lint` (the first step of `npm test`): Biome for the TypeScript (format and lint rules in
// biome.json), clang-format for native/ and binding/ (.clang-format), and a 120-column limit on src/,
// which the formatter cannot enforce on strings and comments. `--fix` (`npm run format`) rewrites
// what the tools can fix; long lines are left to a person.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const fix = process.argv.includes('--fix');
const bin = (name) => join(root, 'node_modules', '.bin', name);
const maxColumns = 120;

function filesUnder(dir, extensions) {
  const out = [];
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(path, extensions));
    else if (extensions.some((e) => entry.name.endsWith(e))) out.push(path);
  }
  return out;
}

function run(command, args) {
  const r = spawnSync(command, args, { cwd: root, stdio: 'inherit' });
  if (r.error) throw r.error;
  return r.status === 0;
}

const colors = process.stdout.isTTY ? [] : ['--colors=off'];
let ok = run(bin('biome'), fix ? ['check', '--write', ...colors, '.'] : ['ci', ...colors, '.']);

const cxx = [...filesUnder('native', ['.cc', '.h', '.cu', '.cuh']), ...filesUnder('binding', ['.cc', '.h'])];
ok = run(bin('clang-format'), fix ? ['-i', ...cxx] : ['--dry-run', '--Werror', ...cxx]) && ok;

const long = [];
for (const file of filesUnder('src', ['.ts'])) {
  readFileSync(join(root, file), 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (line.length > maxColumns) long.push(`${relative(root, join(root, file))}:${i + 1}: ${line.length} columns`);
    });
}
if (long.length > 0) {
  process.stderr.write(`${long.length} lines in src/ are longer than ${maxColumns} columns:\n${long.join('\n')}\n`);
  ok = false;
}
if (!ok) {
  process.stderr.write(`lint failed${fix ? '' : ': `npm run format` fixes formatting'}\n`);
  process.exit(1);
}
process.stderr.write(`lint: ok (Biome, clang-format on ${cxx.length} files, ${maxColumns}-column limit on src/)\n`);
