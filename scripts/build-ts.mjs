// Compiles lib/ to dist/.
//  1. tsc: ESM modules + declarations (dist/*.js, dist/*.d.ts).
//  2. esbuild: the whole library as ONE CommonJS bundle (dist/index.cjs).
//  3. dist/index.js becomes a thin ESM facade over that bundle, so `import` and `require` share one
//     copy of the library: one loaded addon, one Tensor class (instanceof works across both).
//  4. dist/cjs/: the declarations again, under a package.json saying "commonjs", for TypeScript
//     consumers that compile to CommonJS.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const require = createRequire(import.meta.url);
if (!existsSync(join(root, 'node_modules', 'typescript'))) {
  // An installed package ships dist/ already; nothing to build without the dev toolchain.
  if (existsSync(join(dist, 'index.js'))) process.exit(0);
  console.error('build-ts: typescript is not installed; run `npm install` first');
  process.exit(1);
}
rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(root, 'tsconfig.json')], { stdio: 'inherit', cwd: root });

const esbuild = require('esbuild');
const tmp = mkdtempSync(join(tmpdir(), 'nd-build-ts-'));
const shim = join(tmp, 'import-meta-shim.cjs');
writeFileSync(shim, "export const importMetaUrl = require('node:url').pathToFileURL(__filename).href;\n");
esbuild.buildSync({
  entryPoints: [join(dist, 'index.js')],
  outfile: join(dist, 'index.cjs'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  packages: 'external',
  keepNames: true, // class names appear in messages ("received Tensor")
  inject: [shim],
  define: { 'import.meta.url': 'importMetaUrl' },
  logLevel: 'warning',
});
rmSync(tmp, { recursive: true, force: true });

const names = Object.keys(require(join(dist, 'index.cjs'))).filter((n) => n !== 'default' && n !== '__esModule');
writeFileSync(join(dist, 'index.js'),
  '// ESM facade over the CommonJS bundle: one copy of the library for import and require.\n' +
  "import { createRequire } from 'node:module';\n" +
  "const lib = createRequire(import.meta.url)('./index.cjs');\n" +
  `export const { ${names.join(', ')} } = lib;\n`);
rmSync(join(dist, 'index.js.map'), { force: true });

const cjsTypes = join(dist, 'cjs');
mkdirSync(cjsTypes, { recursive: true });
writeFileSync(join(cjsTypes, 'package.json'), '{ "type": "commonjs" }\n');
for (const f of readdirSync(dist)) if (f.endsWith('.d.ts')) copyFileSync(join(dist, f), join(cjsTypes, f));
chmodSync(join(dist, 'cli.js'), 0o755);
