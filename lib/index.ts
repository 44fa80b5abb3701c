/**
 * node-diffusion: diffusion-model inference for Node.js.
 * @packageDocumentation
 */
export { Tensor, type TensorFromOptions, type TensorCreateOptions } from './tensor.js';
export { DTYPES, type DType, type TypedArrayFor, type AnyTypedArray } from './dtype.js';
export { randn, type RandnOptions, type Seed } from './random.js';
export {
  setThreads, getThreads, configureDevices, devices, memoryStats, emptyCache, setMemoryLimit,
  type DeviceId, type DeviceConfig, type DeviceInfo, type MemoryStats,
} from './device.js';
export { openSafetensors, loadSafetensors, saveSafetensors, SafetensorsFile, type SafetensorsTensorInfo, type ReadOptions } from './safetensors.js';
export { init, backendInfo, type BackendInfo, type InitOptions } from './info.js';
export type { BackendRequest, CandidateReport, CudaProbe } from './binding.js';
export {
  DiffusionError, ArgumentError, ShapeError, DTypeError, FileFormatError, IOError, DeviceError, OutOfMemoryError,
  ModelError, AbortError, DisposedError, BindingLoadError, InternalError, type ErrorCode,
} from './errors.js';
export {
  schedules, analytic, sample, createSampler, listSamplers, listSchedules, Schedule, Sampler, AnalyticDenoiser, GaussianDenoiser, LowRankGaussian,
  STEP_SPACINGS, PREDICTIONS,
  type StepSpacing, type TimestepOptions, type VpDiscreteOptions, type ScheduleInfo, type Prediction, type SamplerInfo, type SamplerOptionInfo,
  type GridOptions, type SamplerSetupOptions, type JsDenoiser, type TeleportOptions, type AnalyticInitOptions, type SampleOptions,
} from './solvers.js';
export { partitionTimesteps, partitionTimestepsWith, type PartitionCost, type TimestepPartition } from './moe.js';
export {
  loadModel, DiffusionModel, ModelDenoiser, TimestepExperts, timestepExperts, measureGemmRate, measureCudaStepPass, MODEL_LAYOUTS,
  type ModelLayout, type LoadModelOptions, type ModelConfig, type RoutingLayerStats, type RoutingRecord,
  type ForwardOptions, type ModelDenoiserOptions, type TimestepExpert, type GemmRateOptions,
} from './models.js';
export { ImageBatch, encodePNG, type ImageGridOptions } from './image.js';
export { loadClassifier, ImageClassifier, DEFAULT_CLASSIFIER } from './classifier.js';
export {
  Pipeline, DEFAULT_MODEL, listBuiltinModels, resolveModelSource,
  type ModelCard, type BuiltinModelInfo, type PipelineLoadOptions, type GenerateOptions, type GenerateResult, type GenerateStats,
  type StepInfo, type TimestepExpertSpec,
} from './pipeline.js';
