/**
 * @swarmbee/core — the types and errors every SwarmBee package shares. No I/O.
 *
 * @example
 * ```ts
 * import { TokenOutOfVocabularyError } from '@swarmbee/core';
 * try { ... } catch (e) { if (e.code === TokenOutOfVocabularyError.code) ... }
 * ```
 */
export * from './deadlines.js';
export * from './decoder-config.js';
export * from './errors.js';
export * from './generation-defaults.js';
export * from './gguf.js';
export * from './manifest.js';
export * from './model-errors.js';
export * from './onnx-decoder.js';
export * from './optimize-errors.js';
export * from './plan.js';
export * from './process-faults.js';
export * from './profile.js';
export * from './sampling.js';
export * from './service-errors.js';
export * from './stage-timeline.js';
export * from './state-machine.js';
export * from './tensor.js';
export * from './train-errors.js';
export * from './version.js';
