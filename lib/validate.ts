/**
 * Argument validation with one message format:
 * "Expected positive integer for steps but received -1".
 */
import { ArgumentError } from './errors.js';

function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (typeof value === 'bigint') return `${value}n`;
  if (Array.isArray(value)) {
    const shown = value.slice(0, 8).map(describe).join(', ');
    return `[${shown}${value.length > 8 ? `, ... (${value.length} items)` : ''}]`;
  }
  if (typeof value === 'function') return `function ${value.name || '(anonymous)'}`;
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'object') return value.constructor?.name ?? 'object';
  return String(value);
}

export function invalidParameter(name: string, expected: string, actual: unknown): ArgumentError {
  return new ArgumentError(`Expected ${expected} for ${name} but received ${describe(actual)}`);
}

export function isInteger(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

export function assertPositiveInteger(name: string, v: unknown): asserts v is number {
  if (!isInteger(v) || v <= 0) throw invalidParameter(name, 'positive integer', v);
}

export function assertNonNegativeInteger(name: string, v: unknown): asserts v is number {
  if (!isInteger(v) || v < 0) throw invalidParameter(name, 'non-negative integer', v);
}

export function assertIntegerInRange(name: string, v: unknown, lo: number, hi: number): asserts v is number {
  if (!isInteger(v) || v < lo || v > hi) throw invalidParameter(name, `integer in [${lo}, ${hi}]`, v);
}

export function assertString(name: string, v: unknown): asserts v is string {
  if (typeof v !== 'string') throw invalidParameter(name, 'string', v);
}

export function assertOneOf<T extends string>(name: string, v: unknown, allowed: readonly T[]): asserts v is T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw invalidParameter(name, `one of ${allowed.map((a) => `'${a}'`).join(', ')}`, v);
  }
}

export function assertObject(name: string, v: unknown): asserts v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalidParameter(name, 'object', v);
}

export function assertShape(name: string, v: unknown): asserts v is number[] {
  if (!Array.isArray(v) || v.length > 16 || !v.every((d) => isInteger(d) && d >= 0)) {
    throw invalidParameter(name, 'array of at most 16 non-negative integers', v);
  }
}
