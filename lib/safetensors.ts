/**
 * safetensors files: opened lazily (memory-mapped; each tensor is converted and copied out only
 * when asked for) and written atomically. Headers are validated strictly before anything is read;
 * a malformed file gives a FileFormatError that names the problem.
 */
import { addon, type NativeSafetensorsHandle } from './binding.js';
import { resolveDevice } from './device.js';
import { type DType, parseDType } from './dtype.js';
import { callAsync, callSync, DisposedError } from './errors.js';
import { Tensor } from './tensor.js';
import { assertObject, assertString, invalidParameter } from './validate.js';

const asyncDisposeSymbol: typeof Symbol.asyncDispose = Symbol.asyncDispose ?? Symbol.for('Symbol.asyncDispose');
const disposeSymbol: typeof Symbol.dispose = Symbol.dispose ?? Symbol.for('Symbol.dispose');

export interface SafetensorsTensorInfo {
  name: string;
  /** The stored dtype as the format spells it: 'F32', 'BF16', 'F8_E4M3', ... */
  storedDType: string;
  shape: number[];
  /** Byte range within the data buffer. */
  begin: number;
  end: number;
}

export interface ReadOptions {
  /** Convert to this dtype on load (default: the stored one, when it is a tensor dtype). */
  dtype?: DType;
  device?: string;
  /**
   * Share the file's read-only memory mapping instead of copying (stored dtype, device 'cpu',
   * aligned data only; otherwise a copy is made). Loading becomes nearly free, the tensor is
   * read-only (view() refuses; clone() gives a writable copy) and keeps the file mapped. Only for
   * files nobody truncates or rewrites in place while mapped: reading a truncated mapping kills
   * the process (SIGBUS), which no library can catch.
   */
  zeroCopy?: boolean;
}

function readOptions(options: unknown): { dtype: DType | null; device: string; zeroCopy: boolean } {
  assertObject('options', options);
  const o = options as ReadOptions;
  if (o.zeroCopy !== undefined && typeof o.zeroCopy !== 'boolean') throw invalidParameter('zeroCopy', 'boolean', o.zeroCopy);
  return {
    dtype: o.dtype === undefined ? null : parseDType('dtype', o.dtype),
    device: resolveDevice('device', o.device ?? 'cpu'),
    zeroCopy: o.zeroCopy === true,
  };
}

export class SafetensorsFile {
  private _handle: NativeSafetensorsHandle | undefined;
  readonly path: string;
  readonly tensors: ReadonlyMap<string, SafetensorsTensorInfo>;
  readonly metadata: Readonly<Record<string, string>>;

  /** @internal use openSafetensors() */
  constructor(path: string, handle: NativeSafetensorsHandle) {
    this.path = path;
    this._handle = handle;
    const h = callSync(() => handle.header());
    this.tensors = new Map(h.tensors.map((t) => [t.name, { name: t.name, storedDType: t.dtype, shape: t.shape, begin: t.begin, end: t.end }]));
    this.metadata = Object.freeze(Object.fromEntries(h.metadata));
  }

  keys(): string[] {
    return [...this.tensors.keys()];
  }

  /** Reads one tensor (converted to `dtype`, placed on `device`). */
  async tensor(name: string, options: ReadOptions = {}): Promise<Tensor> {
    assertString('name', name);
    const { dtype, device, zeroCopy } = readOptions(options);
    const handle = this._handle;
    if (!handle) throw new DisposedError(`safetensors file ${this.path} was closed`);
    if (!this.tensors.has(name)) throw invalidParameter('name', `one of the file's ${this.tensors.size} tensor names`, name);
    return new Tensor(await callAsync(() => handle.read(name, dtype, device, zeroCopy)));
  }

  /** Unmaps the file. Reads already started finish first. */
  close(): void {
    this._handle?.close();
    this._handle = undefined;
  }

  [disposeSymbol](): void {
    this.close();
  }

  async [asyncDisposeSymbol](): Promise<void> {
    this.close();
  }
}

export async function openSafetensors(path: string): Promise<SafetensorsFile> {
  assertString('path', path);
  const handle = await callAsync(() => addon().safetensorsOpen(path));
  return new SafetensorsFile(path, handle);
}

/** Reads every tensor of a file. */
export async function loadSafetensors(path: string, options: ReadOptions = {}): Promise<Record<string, Tensor>> {
  readOptions(options);
  const file = await openSafetensors(path);
  try {
    const out: Record<string, Tensor> = {};
    for (const name of file.keys()) out[name] = await file.tensor(name, options);
    return out;
  } finally {
    file.close();
  }
}

/** Writes tensors (from any device) to `path`, atomically (temporary file + rename). */
export async function saveSafetensors(
  path: string,
  tensors: Record<string, Tensor> | ReadonlyMap<string, Tensor>,
  options: { metadata?: Record<string, string> } = {},
): Promise<void> {
  assertString('path', path);
  if (typeof tensors !== 'object' || tensors === null) throw invalidParameter('tensors', 'object or Map of name -> Tensor', tensors);
  assertObject('options', options);
  const isMapLike = typeof (tensors as ReadonlyMap<string, Tensor>).entries === 'function' &&
    typeof (tensors as ReadonlyMap<string, Tensor>).get === 'function';
  const entries = isMapLike ? [...(tensors as ReadonlyMap<string, Tensor>).entries()] : Object.entries(tensors as Record<string, Tensor>);
  const native = entries.map(([name, t]) => {
    if (typeof name !== 'string') throw invalidParameter('tensor name', 'string', name);
    if (!(t instanceof Tensor)) throw invalidParameter(`tensors['${name}']`, 'Tensor', t);
    return { name, tensor: t.handle() };
  });
  if (options.metadata !== undefined) assertObject('metadata', options.metadata);
  const metadata = Object.entries(options.metadata ?? {});
  for (const [k, v] of metadata) if (typeof v !== 'string') throw invalidParameter(`metadata['${k}']`, 'string', v);
  await callAsync(() => addon().safetensorsWrite(path, native, metadata));
}
