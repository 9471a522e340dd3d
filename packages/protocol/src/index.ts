/** @swarmbee/protocol — wire messages, the msgpack codec and tensor frames. */
export { type DecodeOptions, DEFAULT_MAX_FRAME_BYTES, decode, encode } from './codec.js';
export * from './messages/index.js';
export * from './tensor.js';
