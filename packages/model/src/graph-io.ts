/**
 * @swarmbee/model/graph-io — the names a stage engine feeds to and reads from a shard's
 * graphs (inference and training), and which attention-bias inputs a shard takes.
 *
 * A separate entry point because a stage thread needs only these: it imports no graph
 * builder, tokenizer or file format, so each stage thread (and, in the tests, each thread's
 * TypeScript compile through tsx) loads a few small modules instead of the whole package.
 */
export { MASKED_BIAS, SHARD_IO, shardBiasInputs } from './onnx/shard-io.js';
export { TRAIN_IO } from './train/train-io.js';
