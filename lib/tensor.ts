/**
 * Tensor: an n-dimensional array in native memory on one device.
 *
 * Zero-copy where it is safe: `view()` exposes a CPU tensor's own memory to JS without a copy (the
 * memory stays alive while either side uses it), so filling `Tensor.empty(shape).view()` builds a
 * tensor without copying. `Tensor.from(typedArray)` copies by default; `{ copy: false }` shares
 * the TypedArray's memory under a contract (see TensorFromOptions.copy). Native memory is freed by
 * dispose() (or `using`), and by the garbage collector as a safety net; its size is reported to V8
 * so forgotten tensors are collected.
 */
import { addon, type NativeTensorHandle } from './binding.js';
import { resolveDevice, type DeviceId } from './device.js';
import { type AnyTypedArray, type DType, dtypeSize, naturalDType, parseDType, storesDType, typedArrayCtor, type TypedArrayFor } from './dtype.js';
import { callAsync, callSync, DisposedError, ShapeError } from './errors.js';
import { assertObject, assertShape, invalidParameter } from './validate.js';

const disposeSymbol: typeof Symbol.dispose = Symbol.dispose ?? Symbol.for('Symbol.dispose');

export interface TensorFromOptions {
  /** Shape; defaults to [data.length]. */
  shape?: readonly number[];
  /** Element type; defaults to the TypedArray's own (Float32Array -> f32 ...), f32 for number[]. */
  dtype?: DType;
  /**
   * Default true: the tensor gets its own copy of the data (made on the calling thread; fill
   * `Tensor.empty(shape).view()` in place to avoid it for large arrays). `false` shares the
   * TypedArray's memory instead, which is only safe while you neither transfer (postMessage,
   * structuredClone with transfer) nor resize its buffer until the tensor is disposed and its
   * pending operations have settled: Node-API cannot pin a JS buffer. Shared and resizable
   * buffers are always copied.
   */
  copy?: boolean;
}

export interface TensorCreateOptions {
  dtype?: DType;
  device?: string;
}

const intRange: Partial<Record<DType, [number, number]>> = {
  i32: [-(2 ** 31), 2 ** 31 - 1],
  u8: [0, 255],
};

/** Number arrays are converted by us, so out-of-range values are errors rather than wrapped. */
function checkValues(data: readonly unknown[], dtype: DType): void {
  const range = intRange[dtype];
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (dtype === 'i64') {
      if (typeof v !== 'bigint' && !Number.isSafeInteger(v)) throw invalidParameter(`data[${i}]`, 'bigint or safe integer for dtype i64', v);
    } else if (dtype === 'bool') {
      if (typeof v !== 'boolean' && v !== 0 && v !== 1) throw invalidParameter(`data[${i}]`, 'boolean, 0 or 1 for dtype bool', v);
    } else if (typeof v !== 'number') {
      throw invalidParameter(`data[${i}]`, `number for dtype ${dtype}`, v);
    } else if (range && (!Number.isInteger(v) || v < range[0] || v > range[1])) {
      throw invalidParameter(`data[${i}]`, `integer in [${range[0]}, ${range[1]}] for dtype ${dtype}`, v);
    }
  }
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export class Tensor {
  /** @internal */
  _handle: NativeTensorHandle | undefined;
  /** @internal the JS memory a zero-copy tensor points into */
  private _source: ArrayBufferView | undefined;
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly device: DeviceId;

  /** @internal use Tensor.from / Tensor.empty / Tensor.zeros / randn */
  constructor(handle: NativeTensorHandle, source?: ArrayBufferView) {
    this._handle = handle;
    this._source = source;
    this.shape = Object.freeze(handle.shape());
    this.dtype = handle.dtype() as DType;
    this.device = handle.device() as DeviceId;
  }

  /** A CPU tensor holding `data` (shared, not copied, when the TypedArray is the dtype's own). */
  static from(data: AnyTypedArray | readonly number[] | readonly bigint[], options: TensorFromOptions = {}): Tensor {
    assertObject('options', options as unknown);
    if (options.copy !== undefined && typeof options.copy !== 'boolean') throw invalidParameter('copy', 'boolean', options.copy);
    let array: ArrayBufferView;
    let dtype: DType;
    let owned = false;
    if (Array.isArray(data)) {
      dtype = options.dtype ? parseDType('dtype', options.dtype) : 'f32';
      if (dtype === 'f16' || dtype === 'bf16') {
        throw invalidParameter('data', `Uint16Array of raw ${dtype} bits (or f32 data and tensor.cast('${dtype}'))`, 'number[]');
      }
      checkValues(data, dtype);
      const Ctor = typedArrayCtor[dtype] as unknown as { from(a: readonly unknown[]): AnyTypedArray };
      array = Ctor.from(dtype === 'bool' ? data.map((v) => (v ? 1 : 0)) : data);
      owned = true;
    } else if (ArrayBuffer.isView(data) && !(data instanceof DataView)) {
      array = data;
      const natural = naturalDType(data);
      dtype = options.dtype ? parseDType('dtype', options.dtype) : (natural ?? 'f16');
      if (!options.dtype && !natural && !(data instanceof Uint16Array)) {
        throw invalidParameter('data', 'Float32Array, Float64Array, Int32Array, BigInt64Array, Uint8Array or Uint16Array', data);
      }
      if (!options.dtype && data instanceof Uint16Array) {
        throw invalidParameter('dtype', "'f16' or 'bf16' (a Uint16Array holds raw 16-bit floats)", undefined);
      }
      if (!storesDType(data, dtype)) {
        throw invalidParameter('data', `${typedArrayCtor[dtype].name} for dtype ${dtype}`, data);
      }
      if (dtype === 'bool' && (data as Uint8Array).some((v) => v > 1)) {
        throw invalidParameter('data', 'only 0 and 1 for dtype bool', 'other values');
      }
    } else {
      throw invalidParameter('data', 'TypedArray or array of numbers', data);
    }
    const shape = options.shape ?? [array.byteLength / dtypeSize[dtype]];
    assertShape('shape', shape);
    const n = numel(shape);
    if (n * dtypeSize[dtype] !== array.byteLength) {
      throw new ShapeError(`Data has ${array.byteLength / dtypeSize[dtype]} elements but shape [${shape.join(', ')}] needs ${n}`);
    }
    // Memory another thread may write (SharedArrayBuffer) or that may shrink under us (resizable
    // and growable buffers) is never shared with native code: it is copied.
    const buffer = array.buffer as ArrayBufferLike & { resizable?: boolean; growable?: boolean };
    const shared = typeof SharedArrayBuffer !== 'undefined' && buffer instanceof SharedArrayBuffer;
    const copy = !owned && (options.copy !== false || shared || buffer.resizable === true || buffer.growable === true);
    const handle = callSync(() => addon().fromArray(array, [...shape], dtype, copy));
    return new Tensor(handle, copy ? undefined : array);
  }

  /** An uninitialised tensor. */
  static empty(shape: readonly number[], options: TensorCreateOptions = {}): Tensor {
    assertShape('shape', shape);
    assertObject('options', options as unknown);
    const dtype = parseDType('dtype', options.dtype ?? 'f32');
    const device = resolveDevice('device', options.device ?? 'cpu');
    return new Tensor(callSync(() => addon().empty([...shape], dtype, device)));
  }

  static async zeros(shape: readonly number[], options: TensorCreateOptions = {}): Promise<Tensor> {
    assertShape('shape', shape);
    assertObject('options', options as unknown);
    const dtype = parseDType('dtype', options.dtype ?? 'f32');
    const device = resolveDevice('device', options.device ?? 'cpu');
    return new Tensor(await callAsync(() => addon().zeros([...shape], dtype, device)));
  }

  get numel(): number {
    return numel(this.shape);
  }

  get nbytes(): number {
    return this.numel * dtypeSize[this.dtype];
  }

  get disposed(): boolean {
    return this._handle === undefined;
  }

  /** Whether this tensor shares memory it does not own (its source TypedArray, or a mapped file). */
  get zeroCopy(): boolean {
    return this._handle !== undefined && (this._source !== undefined || this._handle.zeroCopy());
  }

  /** @internal the live native handle; throws after dispose() or if shared memory was detached */
  handle(): NativeTensorHandle {
    if (!this._handle) throw new DisposedError('Tensor was disposed');
    if (this._source && this._source.byteLength !== this.nbytes) {
      throw new DisposedError('The ArrayBuffer this tensor shares was detached (transferred); create the tensor with { copy: true } to transfer its source');
    }
    return this._handle;
  }

  /** A copy on `device` ('cpu', 'cpu:N', 'cuda:N'). Returns this tensor when it is already there. */
  async to(device: string): Promise<Tensor> {
    const d = resolveDevice('device', device);
    const h = this.handle();
    if (d === this.device) return this;
    return new Tensor(await callAsync(() => addon().toDevice(h, d)));
  }

  /** A copy on the same device, made off the JS thread (use it instead of `copy: true` for big arrays). */
  async clone(): Promise<Tensor> {
    const h = this.handle();
    const d = this.device;
    return new Tensor(await callAsync(() => addon().toDevice(h, d)));
  }

  /** A copy converted to `dtype` (round to nearest even for f16/bf16). */
  async cast(dtype: DType): Promise<Tensor> {
    const t = parseDType('dtype', dtype);
    const h = this.handle();
    return new Tensor(await callAsync(() => addon().cast(h, t)));
  }

  /** A copy of the values, read off the JS thread (f16/bf16 as raw Uint16 bits). */
  async data<D extends DType = DType>(): Promise<TypedArrayFor[D]> {
    const h = this.handle();
    const out = new typedArrayCtor[this.dtype](this.numel);
    await callAsync(() => addon().read(h, out));
    return out as TypedArrayFor[D];
  }

  /** A copy of the values, read on the calling thread: for small tensors. */
  dataSync<D extends DType = DType>(): TypedArrayFor[D] {
    const h = this.handle();
    const out = new typedArrayCtor[this.dtype](this.numel);
    callSync(() => addon().readSync(h, out));
    return out as TypedArrayFor[D];
  }

  /**
   * The CPU tensor's memory as a TypedArray, without a copy. Writes through it change the tensor.
   * The memory stays valid while the returned array is reachable, even after dispose().
   */
  view<D extends DType = DType>(): TypedArrayFor[D] {
    const h = this.handle();
    if (this._source) {
      const s = this._source;
      return new typedArrayCtor[this.dtype](s.buffer, s.byteOffset, this.numel) as TypedArrayFor[D];
    }
    const buf = callSync(() => addon().view(h));
    return new typedArrayCtor[this.dtype](buf, 0, this.numel) as TypedArrayFor[D];
  }

  /** Frees the native memory now. Safe to call twice. */
  dispose(): void {
    if (!this._handle) return;
    this._handle.dispose();
    this._handle = undefined;
    this._source = undefined;
  }

  [disposeSymbol](): void {
    this.dispose();
  }

  toString(): string {
    return `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}, device=${this.device}${this.disposed ? ', disposed' : ''})`;
  }
}
