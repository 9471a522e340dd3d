/** Names of a served-adapter stack's two tensors in a shard: A [N+1, in, R] and B [N+1, R, out]. */
export const loraStackTensor = {
  a: (tensor: string) => `${tensor}.lora_a_stack`,
  b: (tensor: string) => `${tensor}.lora_b_stack`,
} as const;
