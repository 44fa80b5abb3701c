#!/usr/bin/env node
/** The node-diffusion command line. */
import { parseArgs } from 'node:util';
import { type BackendInfo, DiffusionError, init } from './index.js';
import { packageVersion } from './info.js';

const HELP = `Usage: node-diffusion <command> [options]

Commands:
  info        Version, backends (and why each is or is not available), devices, threads, CPU features

Options:
  --backend <auto|cpu|cuda>  Backend to load (default: env ND_BACKEND or auto)
  --json                     Machine-readable output
  -h, --help                 Show help
  -v, --version              Show the version
`;

const INFO_HELP = `Usage: node-diffusion info [--backend auto|cpu|cuda] [--json]

Prints the package version, the native binary that loaded, whether the CPU and CUDA backends are
available (and why not), the devices with their memory statistics, the thread count and the CPU's
features. Exit code 0 when a backend loaded, 1 otherwise.
`;

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

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        json: { type: 'boolean', default: false },
        backend: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
        version: { type: 'boolean', short: 'v', default: false },
      },
    });
  } catch (err) {
    process.stderr.write(`node-diffusion: ${(err as Error).message}\n${HELP}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const command = positionals[0];
  if (values.version) {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  if (!command || (values.help && !command)) {
    process.stdout.write(HELP);
    return command || values.help ? 0 : 1;
  }
  if (command !== 'info') {
    process.stderr.write(`node-diffusion: unknown command '${command}'; valid commands: info\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(INFO_HELP);
    return 0;
  }
  try {
    const info = values.backend ? await init({ backend: values.backend as 'auto' }) : await init();
    process.stdout.write(values.json ? `${JSON.stringify(info, null, 2)}\n` : `${formatInfo(info)}\n`);
    return 0;
  } catch (err) {
    const e = err as Error;
    const code = err instanceof DiffusionError ? ` [${err.code}]` : '';
    process.stderr.write(`node-diffusion: ${e.message}${code}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
