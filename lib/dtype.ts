/** Tensor element types and the TypedArray that holds each one's raw values. */
import { invalidParameter } from './validate.js';

export const DTYPES = ['f32', 'f16', 'bf16', 'f64', 'i32', 'i64', 'u8', 'bool'] as const;
export type DType = (typeof DTYPES)[number];

/** f16 and bf16 travel as their raw 16-bit patterns; bool as 0/1 bytes. */
export interface TypedArrayFor {
  f32: Float32Array;
  f16: Uint16Array;
  bf16: Uint16Array;
  f64: Float64Array;
  i32: Int32Array;
  i64: BigInt64Array;
  u8: Uint8Array;
  bool: Uint8Array;
}
export type AnyTypedArray = TypedArrayFor[DType];

type TypedArrayCtor = { new (length: number): AnyTypedArray; new (buffer: ArrayBufferLike, byteOffset: number, length: number): AnyTypedArray; BYTES_PER_ELEMENT: number };

export const typedArrayCtor: Record<DType, TypedArrayCtor> = {
  f32: Float32Array,
  f16: Uint16Array,
  bf16: Uint16Array,
  f64: Float64Array,
  i32: Int32Array,
  i64: BigInt64Array,
  u8: Uint8Array,
  bool: Uint8Array,
} as unknown as Record<DType, TypedArrayCtor>;

export const dtypeSize: Record<DType, number> = { f32: 4, f16: 2, bf16: 2, f64: 8, i32: 4, i64: 8, u8: 1, bool: 1 };

const aliases: Record<string, DType> = {
  float32: 'f32', float16: 'f16', bfloat16: 'bf16', float64: 'f64', int32: 'i32', int64: 'i64', uint8: 'u8',
};

export function parseDType(name: string, value: unknown): DType {
  if (typeof value === 'string') {
    if ((DTYPES as readonly string[]).includes(value)) return value as DType;
    if (value in aliases) return aliases[value];
  }
  throw invalidParameter(name, `one of ${DTYPES.join(', ')}`, value);
}

/** The dtype whose raw storage a TypedArray is, when that is unambiguous. */
export function naturalDType(data: ArrayBufferView): DType | undefined {
  if (data instanceof Float32Array) return 'f32';
  if (data instanceof Float64Array) return 'f64';
  if (data instanceof Int32Array) return 'i32';
  if (data instanceof BigInt64Array) return 'i64';
  if (data instanceof Uint8Array) return 'u8';
  return undefined;
}

/** Whether `data` can hold the raw values of `dtype` without conversion. */
export function storesDType(data: ArrayBufferView, dtype: DType): boolean {
  return data.constructor === typedArrayCtor[dtype] || (dtype === 'u8' && data instanceof Uint8Array);
}
