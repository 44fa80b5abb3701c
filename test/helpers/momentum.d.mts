import type { Schedule, Tensor } from '../../lib/index.js';
export interface GuidedProblem { schedule: Schedule; denoiser: (x: Tensor, t: number) => Promise<Tensor>; noise: Tensor; w: number }
export declare function guidedProblem(w: number): GuidedProblem;
export declare function runGuided(p: GuidedProblem, sampler: string, steps: number, options?: Record<string, number | boolean | string>): Promise<Tensor>;
export declare function guidedError(p: GuidedProblem, reference: Tensor, sampler: string, steps: number, options?: Record<string, number | boolean | string>): Promise<{ rmse: number; maxAbs: number }>;
export declare function guidedReference(p: GuidedProblem): Promise<Tensor>;
export declare const MOMENTUM_CONFIGS: [string, Record<string, number>, string][];
