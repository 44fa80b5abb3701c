// Synchronous throws with a typed error code.
import { expect } from 'vitest';

export function expectCode(fn: () => unknown, code: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, 'expected a throw').toBeInstanceOf(Error);
  expect((thrown as { code?: string }).code).toBe(code);
}
