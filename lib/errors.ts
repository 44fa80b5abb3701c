/**
 * Errors thrown by node-diffusion. Every error has a stable `code`; native failures are mapped to
 * the same classes and carry the JavaScript stack of the call that started the work.
 */

export type ErrorCode =
  | 'ERR_ND_ARG'
  | 'ERR_ND_SHAPE'
  | 'ERR_ND_DTYPE'
  | 'ERR_ND_FILE_FORMAT'
  | 'ERR_ND_IO'
  | 'ERR_ND_DEVICE'
  | 'ERR_ND_OOM'
  | 'ERR_ND_MODEL'
  | 'ERR_ND_ABORTED'
  | 'ERR_ND_DISPOSED'
  | 'ERR_ND_BINDING'
  | 'ERR_ND_INTERNAL';

export class DiffusionError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

export class ArgumentError extends DiffusionError {
  constructor(message: string, options?: { cause?: unknown }) { super('ERR_ND_ARG', message, options); }
}
export class ShapeError extends DiffusionError {
  constructor(message: string, options?: { cause?: unknown }) { super('ERR_ND_SHAPE', message, options); }
}
export class DTypeError extends DiffusionError {
  constructor(message: string, options?: { cause?: unknown }) { super('ERR_ND_DTYPE', message, options); }
}
export class FileFormatError extends DiffusionError {
  constructor(message: string, options?: { cause?: unknown }) { super('ERR_ND_FILE_FORMAT', message, options); }
}
export class IOError extends DiffusionError {
  constructor(message: string, options?: { cause?: unknown }) { super('ERR_ND_IO', message, options); }
}
export class DeviceError extends DiffusionError {
  constructor(message: string, options?: { cause?: unknown }) { super('ERR_ND_DEVICE', message, options); }
}
export class OutOfMemoryError extends DiffusionError {
  constructor(message: string, options?: { cause?: unknown }) { super('ERR_ND_OOM', message, options); }
}
export class ModelError extends DiffusionError {
  constructor(message: string, options?: { cause?: unknown }) { super('ERR_ND_MODEL', message, options); }
}
export class AbortError extends DiffusionError {
  constructor(message: string, options?: { cause?: unknown }) { super('ERR_ND_ABORTED', message, options); }
}
export class DisposedError extends DiffusionError {
  constructor(message: string, options?: { cause?: unknown }) { super('ERR_ND_DISPOSED', message, options); }
}
export class BindingLoadError extends DiffusionError {
  constructor(message: string, options?: { cause?: unknown }) { super('ERR_ND_BINDING', message, options); }
}
export class InternalError extends DiffusionError {
  constructor(message: string, options?: { cause?: unknown }) { super('ERR_ND_INTERNAL', message, options); }
}

const byCode: Record<ErrorCode, new (message: string, options?: { cause?: unknown }) => DiffusionError> = {
  ERR_ND_ARG: ArgumentError,
  ERR_ND_SHAPE: ShapeError,
  ERR_ND_DTYPE: DTypeError,
  ERR_ND_FILE_FORMAT: FileFormatError,
  ERR_ND_IO: IOError,
  ERR_ND_DEVICE: DeviceError,
  ERR_ND_OOM: OutOfMemoryError,
  ERR_ND_MODEL: ModelError,
  ERR_ND_ABORTED: AbortError,
  ERR_ND_DISPOSED: DisposedError,
  ERR_ND_BINDING: BindingLoadError,
  ERR_ND_INTERNAL: InternalError,
};

/**
 * Turns an error thrown by the addon (a plain Error with a `code`) into the matching
 * DiffusionError subclass. `callSite`, when given, is the stack captured where the user called us,
 * so an async failure points at user code rather than at a libuv callback.
 */
export function fromNative(err: unknown, callSite?: string): unknown {
  if (err instanceof DiffusionError) return err;
  if (!(err instanceof Error)) return err;
  const code = (err as Error & { code?: unknown }).code;
  const Ctor = typeof code === 'string' && code in byCode ? byCode[code as ErrorCode] : undefined;
  if (!Ctor) return err;
  const out = new Ctor(err.message);
  if (callSite) {
    const frames = callSite.split('\n').slice(1).join('\n');
    out.stack = `${out.name} [${out.code}]: ${out.message}\n${frames}`;
  }
  return out;
}

/** Runs a synchronous native call and maps its failure. */
export function callSync<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw fromNative(err, new Error().stack);
  }
}

/** Awaits a native promise and maps its failure, keeping the caller's stack. */
export async function callAsync<T>(fn: () => Promise<T>): Promise<T> {
  const site = new Error().stack;
  try {
    return await fn();
  } catch (err) {
    throw fromNative(err, site);
  }
}
