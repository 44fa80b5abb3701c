import type { AnalyticDenoiser } from '../../lib/index.js';
export interface OrderCase { name: string; label?: string; options?: Record<string, number | boolean | string>; grid?: 'uniform-edm' | 'pfgmpp' | 'mean-reverting' | 'inverse'; steps?: number[]; order: number }
export interface Problem { denoiser: AnalyticDenoiser; xT: Float64Array; dim: number; batch: number }
export declare const ORDER_CASES: OrderCase[];
export declare const STEPS: number[];
export declare function mixtureProblem(): Problem;
export declare function measureOrder(problem: Problem, c: OrderCase, steps?: number[]): Promise<{ errors: number[]; measured: number; steps: number[] }>;
