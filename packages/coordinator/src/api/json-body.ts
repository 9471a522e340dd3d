/**
 * A JSON request body parsed, with a message that says what is wrong — a syntax error, or
 * a key (`__proto__`, a `constructor` holding a `prototype`) that could change objects'
 * prototypes, named by where it is.
 */
import { InvalidArgumentError } from '@swarmbee/core';

const PROTOTYPE_KEY_SPELLING = /__proto__|constructor|\\u/;

/** JSON.parse, with a refusal that names the key for what could pollute prototypes. */
export function parseJson(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InvalidArgumentError(`body: not valid JSON: ${(error as Error).message}`, {
      param: 'body',
    });
  }
  // Only a text that spells one of the keys (or escapes a character) can hold one.
  if (PROTOTYPE_KEY_SPELLING.test(text)) {
    const path = prototypeKey(value);
    if (path !== undefined)
      throw new InvalidArgumentError(
        `${path}: this key is not accepted in a request: it could replace an object's prototype`,
        { param: path },
      );
  }
  return value;
}

/** Where `value` holds a `__proto__` key or a `constructor` object with a `prototype`, if anywhere. */
function prototypeKey(value: unknown): string | undefined {
  const pending: [unknown, string][] = [[value, '']];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const [node, path] = next;
    if (node === null || typeof node !== 'object') continue;
    const at = (key: string) => (path ? `${path}.${key}` : key);
    if (Object.hasOwn(node, '__proto__')) return at('__proto__');
    const ctor = (node as { constructor?: unknown }).constructor;
    if (Object.hasOwn(node, 'constructor') && typeof ctor === 'object' && ctor !== null)
      if (Object.hasOwn(ctor, 'prototype')) return at('constructor');
    for (const [key, child] of Object.entries(node)) pending.push([child, at(key)]);
  }
  return undefined;
}
