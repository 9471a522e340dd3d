/**
 * The input/output contract of SwarmBee's training graphs (one forward and one
 * backward graph per stage). B rows, T tokens per row, N = B·T; float tensors are the
 * graph's float type (float32, or float64 for the gradient checks).
 *
 * Forward inputs: `input_ids` int64 [B, T] on the first stage, else `hidden_in`
 * [B, T, dim]; `position_ids` int64 [B, T]; `attention_bias` [B, 1, T, T] (0 or
 * -1e30: causal mask plus padding); the stage's adapter tensors by name; on the last
 * stage `targets` int64 [B, T] (the next token, or a negative id where no loss is
 * taken: padding, prompt tokens) and `loss_scale` [] (1 / target tokens of the whole
 * optimizer step, so micro-batches sum to the step's mean).
 * Forward outputs: `hidden_out` [B, T, dim], or `loss` [] on the last stage (this
 * micro-batch's share of the step's mean loss); stashing graphs add `saved.L.*`.
 *
 * Backward inputs: the forward's inputs (recomputing) or `saved.L.*` (stashing), the
 * adapters, and `grad_hidden_out` [B, T, dim] except on the last stage. Outputs:
 * `grad.<adapter tensor>` for each adapter tensor of the stage, `grad_hidden_in`
 * [B, T, dim] when an earlier stage has adapters, and `loss` on a recomputing last stage.
 */
export const TRAIN_IO = {
  inputIds: 'input_ids',
  hiddenIn: 'hidden_in',
  positionIds: 'position_ids',
  attentionBias: 'attention_bias',
  targets: 'targets',
  lossScale: 'loss_scale',
  hiddenOut: 'hidden_out',
  loss: 'loss',
  gradHiddenOut: 'grad_hidden_out',
  gradHiddenIn: 'grad_hidden_in',
  grad: (tensor: string) => `grad.${tensor}`,
  saved: (part: string, key: string) => `saved.${part}.${key}`,
} as const;

/** Target ids below zero take no loss (PyTorch's ignore_index is -100). */
export const IGNORE_TARGET = -100;
