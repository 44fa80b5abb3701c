// Compiles lib/ to dist/: ESM + declarations with tsc, then one CommonJS bundle of the same code
// with esbuild for require() users (import.meta.url is supplied from __filename there).
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
if (!existsSync(join(root, 'node_modules', 'typescript'))) {
  // An installed package ships dist/ already; nothing to build without the dev toolchain.
  if (existsSync(join(root, 'dist', 'index.js'))) process.exit(0);
  console.error('build-ts: typescript is not installed; run `npm install` first');
  process.exit(1);
}
const tsc = require.resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json')], { stdio: 'inherit', cwd: root });
const esbuild = require('esbuild');
const shim = join(root, 'dist', '.import-meta-shim.cjs');
writeFileSync(shim, "export const importMetaUrl = require('node:url').pathToFileURL(__filename).href;\n");
esbuild.buildSync({
  entryPoints: [join(root, 'dist', 'index.js')],
  outfile: join(root, 'dist', 'index.cjs'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  packages: 'external',
  inject: [shim],
  define: { 'import.meta.url': 'importMetaUrl' },
  logLevel: 'warning',
});
copyFileSync(join(root, 'dist', 'index.d.ts'), join(root, 'dist', 'index.d.cts'));
chmodSync(join(root, 'dist', 'cli.js'), 0o755);
