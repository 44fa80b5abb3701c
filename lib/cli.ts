#!/usr/bin/env node
/** The node-diffusion command line. */
import { existsSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type BackendInfo, packageVersion } from './info.js';

// The library's modules are imported lazily, per command, so that --help and usage errors never load
// the native addon. The CLI imports the modules (dist/*.js), never the package entry (dist/index.js,
// a facade over the CommonJS bundle), so a process holds one copy of the library.

const COMMANDS = ['generate', 'samplers', 'models', 'info'] as const;
type Command = (typeof COMMANDS)[number];

const HELP = `Usage: node-diffusion <command> [options]

Commands:
  generate    Generate images with a built-in or local model and write PNG files
  samplers    The samplers generate can use (family, order, model evaluations per step, source)
  models      The built-in models (size, parameters, image size, classes)
  info        Version, backends (and why each is or is not available), devices, threads, CPU features

Options:
  -h, --help                 Show help (node-diffusion <command> --help: that command's options)
  -v, --version              Show the version

Examples:
  node-diffusion generate -o out.png
  node-diffusion generate --class circle --class 3 -n 8 --steps 20 --sampler ddim --cfg 3 --seed 7 -o shapes.png
  node-diffusion samplers
  node-diffusion info --json

Exit codes: 0 success, 1 runtime error, 2 usage error, 130 interrupted (Ctrl-C).
`;

const INFO_HELP = `Usage: node-diffusion info [--backend auto|cpu|cuda] [--json]

Prints the package version, the native binary that loaded, whether the CPU and CUDA backends are
available (and why not), the devices with their memory statistics, the thread count and the CPU's
features. Exit code 0 when a backend loaded, 1 otherwise.

Options:
  --backend <auto|cpu|cuda>  Backend to load (default: env ND_BACKEND or auto)
  --json                     Machine-readable output
  -h, --help                 Show this help
`;

const GENERATE_HELP = `Usage: node-diffusion generate [options]

Generates class-conditional images with a built-in model (node-diffusion models) or a local
.safetensors file and writes PNG files. With no options: one image per class of builtin:shapes, with
the model card's sampler, steps and guidance, as one grid image out.png.

Options:
  --model <builtin:NAME|PATH>  The model: a built-in one, or a .safetensors file with its card
                               <name>.json beside it (default builtin:shapes)
  --class <N|NAME>             The class of an image: an index or a class name of the model card.
                               Repeat it for several images (default: every class once)
  -n, --count <N>              Number of images. With --class the class list repeats cyclically
                               (or is cut) to N images; without, the classes cycle 0, 1, 2, ...
                               (default: one image per --class, else one per class of the model)
  --steps <N>                  Sampling steps (default: the model card's, else 20)
  --sampler <NAME>             Sampler (default: the model card's, else dpmpp-2m; the valid names:
                               node-diffusion samplers)
  --cfg <SCALE>                Classifier-free guidance scale, 1 = no guidance (default: the model
                               card's, else 1)
  --seed <N>                   Seed of the first image; image i gets seed + i, so an image does not
                               depend on the others in the batch (default 0)
  --device <cpu|auto|cuda[:N]> Where the model runs (default cpu; auto = the first GPU when the
                               CUDA backend is in use, else cpu)
  -o, --output <FILE>          The PNG to write (default out.png)
  --grid                       One PNG with all images in a grid, row by row (the default when
                               there are several images)
  --no-grid                    One PNG per image instead, named after --output: out-0.png,
                               out-1.png, ... (indices zero-padded to the same width)
  --columns <N>                Grid columns (default: the length of the class cycle, so that each
                               column holds one class; a square layout when every image has the
                               same class)
  --padding <PX>               Grid padding between and around the images, in output pixels
                               (default 2)
  --scale <K>                  Integer nearest-neighbour upscale of the written images (default 4
                               for a grid, 1 for a single image or --no-grid)
  --json                       Print a JSON object on stdout: files, model, classes, class names,
                               seeds, sampler, steps, cfg, seconds, images/s, ...
  -q, --quiet                  No progress and no summary line (errors only)
  -h, --help                   Show this help

Progress goes to stderr: a progress bar on a terminal, a few "step i/n" lines otherwise. Ctrl-C
stops between two steps (exit code 130). Exit codes: 0 success, 1 runtime error (a missing model
file, a model that does not load, --device cuda without a usable GPU), 2 usage error (a bad option value, an unknown
sampler or class).

Examples:
  node-diffusion generate -o out.png
  node-diffusion generate --class circle --class 3 -n 8 --steps 20 --sampler ddim --cfg 3 --seed 7 -o pair.png
  node-diffusion generate --class square -n 4 --no-grid -o square.png    # square-0.png ... square-3.png
  node-diffusion generate --model ./my-dit.safetensors --json -o my.png
`;

const SAMPLERS_HELP = `Usage: node-diffusion samplers [--json]

Lists the samplers generate can use (--sampler NAME): family, order of accuracy, model evaluations
per step, whether it is stochastic, and the paper or code it follows. Inversion samplers and samplers
that need a conditioned schedule are not listed (the library has them: listSamplers()). More in
docs/samplers.md.

Options:
  --json                     The full descriptions (notes and options included) as a JSON array
  -h, --help                 Show this help
`;

const MODELS_HELP = `Usage: node-diffusion models [--json]

Lists the models shipped with the package (--model builtin:NAME): the default one marked *,
family, parameters, file size, image size and classes.

Options:
  --json                     Machine-readable output (a JSON array, the model cards included)
  -h, --help                 Show this help
`;

const COMMAND_HELP: Record<Command, string> = { generate: GENERATE_HELP, samplers: SAMPLERS_HELP, models: MODELS_HELP, info: INFO_HELP };

/** A usage error (exit code 2). */
class UsageError extends Error {
  readonly code = 'ERR_ND_ARG';
}

function fail(message: string, code?: string): void {
  process.stderr.write(`node-diffusion: ${message.replace(/\s*\n\s*/g, ' ')}${code ? ` [${code}]` : ''}\n`);
}

/**
 * One line for any error. Exit code 2 for errors in the command line found by the CLI itself, 1 for
 * everything the library reports (its DiffusionErrors carry a code; a Node system error is IO).
 */
function errorExit(err: unknown): number {
  const e = err as { message?: unknown; code?: unknown };
  const message = typeof e?.message === 'string' ? e.message : String(err);
  const code = typeof e?.code === 'string' && e.code.startsWith('ERR_ND_') ? e.code : undefined;
  if (err instanceof UsageError) {
    fail(message, 'ERR_ND_ARG');
    return 2;
  }
  if (code) {
    fail(message, code);
    return code === 'ERR_ND_ABORTED' ? 130 : 1;
  }
  const sys = typeof e?.code === 'string' ? e.code : undefined; // Node's ENOENT, EACCES, ...
  fail(message, sys?.startsWith('E') ? 'ERR_ND_IO' : 'ERR_ND_INTERNAL');
  return 1;
}

// ---- argument parsing ------------------------------------------------------------------------------

type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;

const COMMON_OPTIONS: OptionSpec = {
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
};

const OPTIONS: Record<Command, OptionSpec> = {
  info: { json: { type: 'boolean' }, backend: { type: 'string' } },
  samplers: { json: { type: 'boolean' } },
  models: { json: { type: 'boolean' } },
  generate: {
    model: { type: 'string' },
    class: { type: 'string', multiple: true },
    count: { type: 'string', short: 'n' },
    steps: { type: 'string' },
    sampler: { type: 'string' },
    cfg: { type: 'string' },
    seed: { type: 'string' },
    device: { type: 'string' },
    output: { type: 'string', short: 'o' },
    grid: { type: 'boolean' },
    'no-grid': { type: 'boolean' },
    columns: { type: 'string' },
    padding: { type: 'string' },
    scale: { type: 'string' },
    json: { type: 'boolean' },
    quiet: { type: 'boolean', short: 'q' },
  },
};

/** The index of the command word: the first argument that is neither an option nor an option's value. */
function findCommand(argv: string[]): number {
  const takesValue = new Set<string>();
  for (const spec of Object.values(OPTIONS)) {
    for (const [name, o] of Object.entries(spec)) {
      if (o.type !== 'string') continue;
      takesValue.add(`--${name}`);
      if (o.short) takesValue.add(`-${o.short}`);
    }
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') return i + 1 < argv.length ? i + 1 : -1;
    if (a.startsWith('-') && a !== '-') {
      if (takesValue.has(a)) i++;
      continue;
    }
    return i;
  }
  return -1;
}

function parseFailure(err: unknown, command?: Command): UsageError {
  const e = err as { code?: string; message?: string };
  const where = command ? ` (see node-diffusion ${command} --help)` : ' (see node-diffusion --help)';
  const quoted = /'([^']+)'/.exec(e.message ?? '')?.[1];
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && quoted) {
    return new UsageError(`unknown option '${quoted}'${command ? ` for ${command}` : ''}${where}`);
  }
  if (e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL' && quoted) {
    return new UsageError(`unexpected argument '${quoted}'${where}`);
  }
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    return new UsageError(`${(e.message ?? '').replace(/\.$/, '')}${where}`);
  }
  return new UsageError(`${e.message ?? String(err)}${where}`);
}

function integerOption(name: string, raw: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (raw === undefined) return undefined;
  const v = /^[+]?\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    const what = max === Number.MAX_SAFE_INTEGER ? (min === 0 ? 'a non-negative integer' : `an integer >= ${min}`) : `an integer in [${min}, ${max}]`;
    throw new UsageError(`${name} expects ${what}, got '${raw}'`);
  }
  return v;
}

function numberOption(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const v = raw.trim() === '' ? NaN : Number(raw);
  if (!Number.isFinite(v)) throw new UsageError(`${name} expects a number, got '${raw}'`);
  return v;
}

// ---- main --------------------------------------------------------------------------------------------

export async function main(argv: string[]): Promise<number> {
  const at = findCommand(argv);
  const word = at >= 0 ? argv[at] : undefined;
  if (word !== undefined && !(COMMANDS as readonly string[]).includes(word)) {
    if (word === 'help') {
      const topic = argv[at + 1];
      if (topic && (COMMANDS as readonly string[]).includes(topic)) {
        process.stdout.write(COMMAND_HELP[topic as Command]);
        return 0;
      }
      process.stdout.write(HELP);
      return 0;
    }
    fail(`unknown command '${word}'; valid commands: ${COMMANDS.join(', ')}`, 'ERR_ND_ARG');
    return 2;
  }
  const command = word as Command | undefined;
  const rest = at >= 0 ? [...argv.slice(0, at), ...argv.slice(at + 1)] : argv;
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({
      args: rest,
      allowPositionals: false,
      strict: true,
      options: { ...COMMON_OPTIONS, ...(command ? OPTIONS[command] : {}) },
    }));
  } catch (err) {
    return errorExit(parseFailure(err, command));
  }
  if (values.version) {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  if (!command) {
    if (values.help) {
      process.stdout.write(HELP);
      return 0;
    }
    process.stderr.write(HELP);
    return 2;
  }
  if (values.help) {
    process.stdout.write(COMMAND_HELP[command]);
    return 0;
  }
  try {
    switch (command) {
      case 'info': return await infoCommand(values);
      case 'samplers': return await samplersCommand(values);
      case 'models': return await modelsCommand(values);
      case 'generate': return await generateCommand(values);
    }
  } catch (err) {
    return errorExit(err);
  }
}

// ---- info --------------------------------------------------------------------------------------------

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

function formatInfo(info: BackendInfo): string {
  const lines: string[] = [];
  const cudaVer = (v: number) => (v ? `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}` : 'none');
  lines.push(`node-diffusion ${info.version}  (Node ${info.node}, ${info.platform})`);
  lines.push(`binary:   ${info.binary.path} [${info.binary.kind}${info.binary.cudaCompiled ? ', with CUDA' : ''}]`);
  if (info.binary.version !== info.version) {
    lines.push(`warning:  the binary was built from node-diffusion ${info.binary.version}; rebuild it (npm run build)`);
  }
  lines.push(`backend:  ${info.backend} (requested ${info.requested}${info.fellBack ? ', fell back to CPU' : ''})`);
  lines.push('backends:');
  lines.push(`  cpu   available (ISA path: ${info.cpu.isa})`);
  if (info.backend === 'cuda') {
    lines.push(`  cuda  available: ${info.cuda.deviceCount} device(s), driver ${cudaVer(info.cuda.driverVersion)}, runtime ${cudaVer(info.cuda.runtimeVersion)}`);
  } else {
    lines.push(`  cuda  not available: ${info.cudaUnavailableReason ?? info.cuda.error ?? 'unknown'}`);
  }
  for (const c of info.candidates) lines.push(`        candidate ${c.kind} ${c.path}: ${c.verdict}`);
  lines.push(`threads:  ${info.threads}`);
  lines.push('devices:');
  for (const d of info.devices) {
    const extra = d.type === 'cpu' ? `${d.threads} thread(s)${d.cpuSet.length ? ` on CPUs ${d.cpuSet.join(',')}` : ''}` : `${mib(d.totalMemory)} total`;
    lines.push(`  ${d.id.padEnd(8)} ${d.name}, ${extra}; in use ${mib(d.memory.bytesInUse)}, peak ${mib(d.memory.peakBytesInUse)}, cached ${mib(d.memory.bytesCached)}`);
  }
  const feats = Object.entries(info.cpu.features).filter(([, v]) => v).map(([k]) => k);
  lines.push(`cpu:      ${info.cpu.brand || info.cpu.vendor || 'unknown'} (${info.cpu.logicalCpus} logical CPUs)`);
  lines.push(`features: ${feats.join(' ') || 'baseline x86-64 only'}`);
  return lines.join('\n');
}

async function infoCommand(values: Record<string, unknown>): Promise<number> {
  const { init } = await import('./info.js');
  const backend = values.backend as string | undefined;
  const info = backend ? await init({ backend: backend as 'auto' }) : await init();
  process.stdout.write(values.json ? `${JSON.stringify(info, null, 2)}\n` : `${formatInfo(info)}\n`);
  return 0;
}

// ---- samplers, models ----------------------------------------------------------------------------------

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (r: string[]) => r.map((v, c) => (c === r.length - 1 ? v : v.padEnd(widths[c]))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

function cut(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

async function samplersCommand(values: Record<string, unknown>): Promise<number> {
  const [{ Pipeline }, { listSamplers }] = await Promise.all([import('./pipeline.js'), import('./solvers.js')]);
  const names = new Set(Pipeline.samplers());
  const list = listSamplers().filter((s) => names.has(s.name));
  if (values.json) {
    process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
    return 0;
  }
  const rows = list.map((s) => [s.name, s.family, cut(s.order, 28), cut(s.evaluationsPerStep, 24), s.stochastic ? 'yes' : 'no', s.source]);
  process.stdout.write(`${table(['SAMPLER', 'FAMILY', 'ORDER', 'EVALS/STEP', 'STOCHASTIC', 'SOURCE'], rows)}\n`);
  process.stdout.write(`\n${list.length} samplers; use one with: node-diffusion generate --sampler NAME (details: samplers --json, docs/samplers.md)\n`);
  return 0;
}

function formatCount(n: number | undefined): string {
  if (n === undefined) return '?';
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

function listNames(names: readonly string[], max = 10): string {
  return names.length <= max ? names.join(', ') : `${names.slice(0, max).join(', ')}, ... (${names.length})`;
}

async function modelsCommand(values: Record<string, unknown>): Promise<number> {
  const { listBuiltinModels } = await import('./pipeline.js');
  const models = listBuiltinModels();
  if (values.json) {
    process.stdout.write(`${JSON.stringify(models, null, 2)}\n`);
    return 0;
  }
  if (models.length === 0) {
    process.stdout.write('No built-in models are installed (the package has no models/ directory with model cards).\n');
    return 0;
  }
  const rows = models.map((m) => [
    `${m.id}${m.isDefault ? ' *' : ''}`, m.family, formatCount(m.parameters), `${(m.bytes / 1e6).toFixed(1)} MB`,
    `${m.imageSize[1]}x${m.imageSize[0]}`, `${m.classNames.length}: ${listNames(m.classNames)}`,
  ]);
  process.stdout.write(`${table(['MODEL', 'FAMILY', 'PARAMETERS', 'SIZE', 'IMAGE', 'CLASSES'], rows)}\n`);
  if (models.some((m) => m.isDefault)) process.stdout.write('\n* the default (node-diffusion generate without --model)\n');
  return 0;
}

// ---- generate ----------------------------------------------------------------------------------------

interface Progress {
  step(step: number, total: number): void;
  /** Ends a progress-bar line (before the summary or an error). */
  end(): void;
}

function progressReporter(enabled: boolean): Progress {
  const stream = process.stderr;
  const tty = stream.isTTY === true;
  const start = performance.now();
  let open = false;
  let lastLine = 0;
  let lastDraw = 0;
  return {
    step(step, total) {
      if (!enabled) return;
      const elapsed = (performance.now() - start) / 1000;
      const rate = elapsed > 0 ? step / elapsed : 0;
      if (tty) {
        const now = performance.now();
        if (step !== 1 && step !== total && now - lastDraw < 50) return; // at most 20 redraws a second
        lastDraw = now;
        const width = 30;
        const k = Math.min(width, Math.round((width * step) / Math.max(total, 1)));
        stream.write(`\r[${'#'.repeat(k)}${'.'.repeat(width - k)}] ${step}/${total} steps  ${rate.toFixed(1)} it/s\x1b[K`);
        open = true;
      } else {
        // The first and the last step, and about 10 lines in between.
        const every = Math.max(1, Math.ceil(total / 10));
        if (step === 1 || step === total || step - lastLine >= every) {
          stream.write(`step ${step}/${total}  ${rate.toFixed(1)} it/s\n`);
          lastLine = step;
        }
      }
    },
    end() {
      if (open) stream.write('\n');
      open = false;
    },
  };
}

/** out.png -> out-03.png: the index before the extension, zero-padded to the width of the largest. */
function indexedPath(output: string, i: number, count: number): string {
  const digits = String(count - 1).length;
  const idx = String(i).padStart(digits, '0');
  const m = /^(.*?)(\.png)?$/i.exec(output)!;
  return `${m[1]}-${idx}${m[2] ?? '.png'}`;
}

async function generateCommand(values: Record<string, unknown>): Promise<number> {
  // ---- everything checkable without the model
  const count = integerOption('-n/--count', values.count as string | undefined, 1, 100_000);
  const steps = integerOption('--steps', values.steps as string | undefined, 1, 10_000);
  const cfg = numberOption('--cfg', values.cfg as string | undefined);
  const seed = integerOption('--seed', values.seed as string | undefined, 0) ?? 0;
  const columnsOpt = integerOption('--columns', values.columns as string | undefined, 1, 100_000);
  const padding = integerOption('--padding', values.padding as string | undefined, 0, 1000) ?? 2;
  const scaleOpt = integerOption('--scale', values.scale as string | undefined, 1, 64);
  const device = (values.device as string | undefined) ?? 'cpu';
  if (!/^(cpu|auto|cuda(:(0|[1-9][0-9]{0,3}))?)$/.test(device)) throw new UsageError(`--device expects cpu, auto, cuda or cuda:N, got '${device}'`);
  if (values.grid && values['no-grid']) throw new UsageError('--grid and --no-grid contradict each other');
  const output = (values.output as string | undefined) ?? 'out.png';
  if (output === '' || output.endsWith('/')) throw new UsageError(`-o/--output expects a file name, got '${output}'`);
  const outDir = dirname(resolve(output));
  if (!existsSync(outDir) || !statSync(outDir).isDirectory()) throw new UsageError(`the output directory ${outDir} does not exist`);
  const classArgs = (values.class as string[] | undefined) ?? [];
  for (const c of classArgs) if (c.trim() === '') throw new UsageError("--class expects a class index or name, got ''");
  const json = values.json === true;
  const quiet = values.quiet === true;
  const modelSource = (values.model as string | undefined) ?? 'builtin:shapes';

  const { Pipeline } = await import('./pipeline.js');
  if (values.sampler !== undefined) {
    const valid = Pipeline.samplers();
    if (!valid.includes(values.sampler as string)) {
      throw new UsageError(`unknown sampler '${values.sampler as string}' for --sampler; valid: ${valid.join(', ')}`);
    }
  }

  // ---- the model (a cuda device, a missing file or an unknown built-in fail here, before loading)
  const pipe = await Pipeline.load(modelSource, { device });
  try {
    const names = pipe.classNames;
    const numClasses = pipe.model.config.numClasses;
    const classIndex = (c: string): number => {
      const byName = names.indexOf(c);
      if (byName >= 0) return byName;
      const v = /^\d+$/.test(c.trim()) ? Number(c.trim()) : NaN;
      if (Number.isSafeInteger(v) && v < numClasses) return v;
      const named = names.some((n, i) => n !== String(i)) ? ` or one of ${listNames(names, 40)}` : '';
      throw new UsageError(`unknown class '${c}' for --class; valid: an index in [0, ${numClasses - 1}]${named}`);
    };
    let classes: number[];
    let cycle: number;
    if (classArgs.length > 0) {
      const given = classArgs.map(classIndex);
      const n = count ?? given.length;
      classes = Array.from({ length: n }, (_, i) => given[i % given.length]);
      cycle = new Set(given).size === 1 ? 1 : given.length;
    } else {
      const n = count ?? numClasses;
      classes = Array.from({ length: n }, (_, i) => i % numClasses);
      cycle = numClasses;
    }
    const n = classes.length;
    if (seed > Number.MAX_SAFE_INTEGER - (n - 1)) throw new UsageError(`--seed ${seed} is too large for ${n} images (image i gets seed + i, at most ${Number.MAX_SAFE_INTEGER})`);
    const grid = values['no-grid'] ? false : values.grid ? true : n > 1;
    const scale = scaleOpt ?? (grid ? 4 : 1);
    const columns = Math.min(n, columnsOpt ?? (cycle > 1 ? cycle : Math.ceil(Math.sqrt(n))));

    // ---- generation, stoppable with Ctrl-C between steps
    const progress = progressReporter(!quiet);
    const controller = new AbortController();
    let interrupts = 0;
    const onSigint = (): void => {
      interrupts++;
      if (interrupts > 1) process.exit(130); // a second Ctrl-C does not wait for the step in flight
      controller.abort();
    };
    process.on('SIGINT', onSigint);
    let result;
    try {
      result = await pipe.generate({
        classes, seed, steps, sampler: values.sampler as string | undefined, guidanceScale: cfg,
        signal: controller.signal, onStep: (s) => progress.step(s.step, s.total),
      });
    } catch (err) {
      progress.end();
      const e = err as { code?: unknown; message?: unknown };
      if (controller.signal.aborted && e.code === 'ERR_ND_ABORTED') {
        fail(typeof e.message === 'string' ? e.message : 'aborted', 'ERR_ND_ABORTED');
        return 130;
      }
      throw err;
    } finally {
      process.off('SIGINT', onSigint);
    }
    progress.end();
    result.latents.dispose();
    const { images, stats } = result;

    // ---- the files
    const files: string[] = [];
    let width: number, height: number;
    if (grid) {
      const mosaic = images.grid({ columns, padding, scale });
      await writeFile(output, mosaic.toPNG(0));
      files.push(output);
      ({ width, height } = mosaic);
    } else {
      for (let i = 0; i < n; i++) {
        const file = n === 1 ? output : indexedPath(output, i, n);
        const one = scale === 1 ? images.at(i) : images.at(i).grid({ columns: 1, padding: 0, scale });
        await writeFile(file, one.toPNG(0));
        files.push(file);
        ({ width, height } = one);
      }
    }
    const classNames = stats.classes.map((c) => names[c]);
    if (json) {
      const report = {
        files, model: pipe.name, modelPath: pipe.path, device: pipe.device, count: n, classes: stats.classes, classNames,
        seeds: stats.seeds, sampler: stats.sampler, steps: stats.steps, cfg: stats.guidanceScale, evaluations: stats.evaluations,
        seconds: stats.seconds, modelSeconds: stats.modelSeconds, imagesPerSecond: stats.imagesPerSecond,
        grid, columns: grid ? columns : undefined, padding: grid ? padding : undefined, scale, width: width!, height: height!,
      };
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    } else if (!quiet) {
      const distinct = [...new Set(classNames)];
      const where = files.length === 1 ? files[0] : `${files[0]} ... ${files[files.length - 1]}`;
      process.stdout.write(
        `wrote ${where}: ${n} image${n === 1 ? '' : 's'} (${listNames(distinct)}) with ${stats.sampler}, ${stats.steps} steps, cfg ${stats.guidanceScale}, ` +
        `in ${stats.seconds.toFixed(1)} s, ${stats.imagesPerSecond.toFixed(1)} images/s\n`);
    }
    return 0;
  } finally {
    pipe.dispose();
  }
}

process.exitCode = await main(process.argv.slice(2));
