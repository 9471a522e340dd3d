/**
 * @swarmbee/model/tokenizer — a model dir's tokenizer and chat template, for code that
 * needs nothing else of the package: the coordinator's tokenizer threads load these few
 * modules instead of the graph builders and file formats (in the tests, each thread
 * compiles what it loads through tsx).
 */

export { encodeChat, plainChatText } from './tokenizer/chat.js';
export { type ChatMessage, ChatTemplate } from './tokenizer/chat-template.js';
export { loadTokenizer } from './tokenizer/load.js';
export { decodeIds, type TokenDecoder, type Tokenizer } from './tokenizer/tokenizer.js';
