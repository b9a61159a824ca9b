// Where the package lives on disk: this file is in src/ (tsx) or dist/ (compiled), one level down.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const packageRoot: string = resolve(dirname(fileURLToPath(import.meta.url)), '..');
