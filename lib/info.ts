/** What loaded, and why: the backend report behind `node-diffusion info`. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type BackendRequest, type CandidateReport, type CudaProbe, loadBinding, loadBindingAsync } from './binding.js';
import { devices, type DeviceInfo } from './device.js';
import { callSync } from './errors.js';
import { packageRoot } from './paths.js';

export interface BackendInfo {
  version: string;
  /** The backend in use. */
  backend: 'cpu' | 'cuda';
  /** What was asked for (init option or env ND_BACKEND). */
  requested: BackendRequest;
  /** The native binary in use and where it came from. */
  /** The native binary in use; `version` is the package version it was built from. */
  binary: { path: string; kind: CandidateReport['kind']; cudaCompiled: boolean; version: string };
  /** Why CUDA is not in use (absent when it is). */
  cudaUnavailableReason?: string;
  /** Whether `auto` fell back to the CPU. */
  fellBack: boolean;
  candidates: CandidateReport[];
  cuda: CudaProbe;
  cpu: { vendor: string; brand: string; features: Record<string, boolean>; isa: string; logicalCpus: number };
  threads: number;
  devices: DeviceInfo[];
  node: string;
  platform: string;
}

export interface InitOptions {
  /** 'auto' (CUDA when usable, else CPU, saying why), 'cpu', or 'cuda' (error if unavailable). */
  backend?: BackendRequest;
}

/**
 * Loads the native backend now, checking CUDA binaries in a child process without blocking the
 * event loop (otherwise the backend loads synchronously on first use). Call it first to choose the
 * backend; it resolves to the same report as backendInfo().
 */
export async function init(options: InitOptions = {}): Promise<BackendInfo> {
  await loadBindingAsync(options);
  return backendInfo();
}

export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

export function backendInfo(): BackendInfo {
  const b = loadBinding();
  const native = callSync(() => b.addon.nativeInfo());
  return {
    version: packageVersion(),
    backend: b.backend,
    requested: b.requested,
    binary: { path: b.path, kind: b.kind, cudaCompiled: b.addon.cudaCompiled, version: native.version },
    cudaUnavailableReason: b.cudaUnavailableReason,
    fellBack: b.requested === 'auto' && b.backend === 'cpu',
    candidates: b.candidates,
    cuda: native.cuda,
    cpu: native.cpu,
    threads: native.threads,
    devices: devices(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}
