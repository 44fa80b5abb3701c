// The reference checks call Debian's /usr/bin/python3 (torch, Pillow); tests that need a module skip
// cleanly where it is missing.
import { execFileSync } from 'node:child_process';

export const PYTHON = '/usr/bin/python3';

/** Whether PYTHON can import `module`. */
export function pythonHas(module: string): boolean {
  try {
    execFileSync(PYTHON, ['-c', `import ${module}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
