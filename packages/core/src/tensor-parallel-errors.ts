/** Errors of tensor-parallel groups: splitting a layer range across members, and running them. */
import { registerErrors, SwarmBeeError } from './errors.js';

/**
 * A layer range cannot be split across a tensor-parallel group as asked: more members
 * than KV heads, a member whose share rounds to no heads or no columns, a weight or
 * rank out of range, or a model feature the split graphs do not carry (post-norms,
 * quantized weights, fused attention). The message names the numbers.
 */
export class TensorSplitError extends SwarmBeeError {
  static override readonly code = 'SWARMBEE_ERR_TENSOR_SPLIT';
}

registerErrors(TensorSplitError);
