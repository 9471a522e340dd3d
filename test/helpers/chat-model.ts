/**
 * A chat model for tests: stories260K as a Hugging Face checkpoint (tok512 as
 * tokenizer.json) with a small chat template of our own beside it, so conversations
 * go through the template path with a trained model whose greedy text is stable.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { importHf, type LlamaModelDir } from '@swarmbee/model';
import { writeHfStories260K } from './hf-stories260k.js';

/**
 * System text first, then "Q: …" and "A: …</s>" lines; the reply opens with "A:".
 * `enable_thinking` false (Qwen3's switch) starts the reply for the model, and a
 * second system message is refused through raise_exception.
 */
export const STORY_CHAT_TEMPLATE = [
  '{{ bos_token }}',
  '{% for m in messages %}',
  "{% if m.role == 'system' and not loop.first %}{{ raise_exception('the system message must come first') }}{% endif %}",
  "{% if m.role == 'user' %}{{ 'Q: ' + m.content + '\\n' }}",
  "{% elif m.role == 'assistant' %}{{ 'A: ' + m.content + eos_token + '\\n' }}",
  "{% else %}{{ m.content + '\\n' }}{% endif %}",
  '{% endfor %}',
  "{% if add_generation_prompt %}{{ 'A:' }}",
  "{% if enable_thinking is defined and enable_thinking is false %}{{ ' Once upon a time' }}{% endif %}",
  '{% endif %}',
].join('');

/** Writes the checkpoint dir (with `template` as `chat_template.jinja`) at `checkpoint` and imports it to `out`. */
export async function importStoryChatModel(
  checkpoint: string,
  out: string,
  template = STORY_CHAT_TEMPLATE,
): Promise<LlamaModelDir> {
  await writeHfStories260K(checkpoint);
  await writeFile(join(checkpoint, 'chat_template.jinja'), template);
  return importHf({ dir: checkpoint, out });
}
