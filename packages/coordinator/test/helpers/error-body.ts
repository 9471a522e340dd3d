/** Checks an answer is the API's documented error body, with a listed code and its status. */
import { API_ERROR_STATUS } from '@swarmbee/coordinator';
import type { Test } from 'tap';
import type { RawResponse } from './raw-http.js';

/** The documented body: exactly these fields, a listed code, and the status that goes with it. */
export function checkErrorBody(t: Test, response: RawResponse, status: number, code: string) {
  t.equal(response.status, status, `status ${status} (${code})`);
  const body = JSON.parse(response.body) as { error: Record<string, unknown> };
  t.same(Object.keys(body).sort(), ['error']);
  t.same(Object.keys(body.error).sort(), ['code', 'message', 'param', 'retryable', 'type']);
  t.equal(body.error.code, `SWARMBEE_ERR_${code}`);
  t.equal(API_ERROR_STATUS.get(body.error.code as string), status, 'a listed code and its status');
  t.type(body.error.message, 'string');
  t.type(body.error.retryable, 'boolean');
  return body.error;
}
