/**
 * Tensor: an n-dimensional array in native memory on one device.
 *
 * CPU tensors made from a TypedArray of the tensor's own dtype share its memory (no copy) unless
 * `copy: true` is passed or the buffer is a SharedArrayBuffer (another thread could write to it
 * while a native job reads it). Native memory is freed by dispose() (or `using`), and by the
 * garbage collector as a safety net; its size is reported to V8 so forgotten tensors are collected.
 */
import { addon, type NativeTensorHandle } from './binding.js';
import { resolveDevice, type DeviceId } from './device.js';
import { type AnyTypedArray, type DType, dtypeSize, naturalDType, parseDType, storesDType, typedArrayCtor, type TypedArrayFor } from './dtype.js';
import { callAsync, callSync, DisposedError, ShapeError } from './errors.js';
import { assertShape, invalidParameter } from './validate.js';

const disposeSymbol: typeof Symbol.dispose = Symbol.dispose ?? Symbol.for('Symbol.dispose');

export interface TensorFromOptions {
  /** Shape; defaults to [data.length]. */
  shape?: readonly number[];
  /** Element type; defaults to the TypedArray's own (Float32Array -> f32 ...), f32 for number[]. */
  dtype?: DType;
  /**
   * Copy the data instead of sharing the TypedArray's memory. The copy happens on the calling
   * thread; for large arrays prefer `await Tensor.from(data).clone()`, which copies off it.
   */
  copy?: boolean;
}

export interface TensorCreateOptions {
  dtype?: DType;
  device?: string;
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
    let array: ArrayBufferView;
    let dtype: DType;
    let owned = false;
    if (Array.isArray(data)) {
      dtype = options.dtype ? parseDType('dtype', options.dtype) : 'f32';
      if (dtype === 'f16' || dtype === 'bf16') {
        throw invalidParameter('data', `Uint16Array of raw ${dtype} bits (or f32 data and tensor.cast('${dtype}'))`, 'number[]');
      }
      const Ctor = typedArrayCtor[dtype] as unknown as { from(a: readonly unknown[]): AnyTypedArray };
      try {
        array = Ctor.from(dtype === 'bool' ? data.map((v) => (v ? 1 : 0)) : data);
      } catch (err) {
        throw invalidParameter('data', `array of ${dtype === 'i64' ? 'bigint' : 'number'} values`, data);
      }
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
    } else {
      throw invalidParameter('data', 'TypedArray or array of numbers', data);
    }
    const shape = options.shape ?? [array.byteLength / dtypeSize[dtype]];
    assertShape('shape', shape);
    const n = numel(shape);
    if (n * dtypeSize[dtype] !== array.byteLength) {
      throw new ShapeError(`Data has ${array.byteLength / dtypeSize[dtype]} elements but shape [${shape.join(', ')}] needs ${n}`);
    }
    const shared = typeof SharedArrayBuffer !== 'undefined' && array.buffer instanceof SharedArrayBuffer;
    const copy = !owned && (options.copy === true || shared);
    const handle = callSync(() => addon().fromArray(array, [...shape], dtype, copy));
    return new Tensor(handle, copy ? undefined : array);
  }

  /** An uninitialised tensor. */
  static empty(shape: readonly number[], options: TensorCreateOptions = {}): Tensor {
    assertShape('shape', shape);
    const dtype = parseDType('dtype', options.dtype ?? 'f32');
    const device = resolveDevice('device', options.device ?? 'cpu');
    return new Tensor(callSync(() => addon().empty([...shape], dtype, device)));
  }

  static async zeros(shape: readonly number[], options: TensorCreateOptions = {}): Promise<Tensor> {
    assertShape('shape', shape);
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

  /** Whether this tensor shares the memory of the TypedArray it was made from. */
  get zeroCopy(): boolean {
    return this._source !== undefined;
  }

  /** @internal the live native handle; throws after dispose() or if shared memory was detached */
  handle(): NativeTensorHandle {
    if (!this._handle) throw new DisposedError('Tensor was disposed');
    if (this._source && this._source.byteLength === 0 && this.nbytes > 0) {
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
