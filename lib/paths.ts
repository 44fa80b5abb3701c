/** Where this package lives on disk (works from lib/*.ts, dist/*.js and the bundled CommonJS file). */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'CMakeLists.txt'))) return dir;
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'dist'))) return dir;
    dir = dirname(dir);
  }
  return join(dirname(fileURLToPath(import.meta.url)), '..');
}

/** A file of the models shipped with the package (`builtin:<name>` resolves here). */
export function builtinModelPath(file: string): string {
  return join(packageRoot(), 'models', file);
}
