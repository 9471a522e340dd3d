/**
 * Challenge–response proofs over the cluster join token. Neither side ever sends the
 * token: the client proves it with an HMAC over the server's fresh nonce (so a recorded
 * hello cannot be replayed), the server proves it back over the client's fresh nonce (so
 * a worker does not hand its work to an impostor). Each proof is prefixed with its own
 * label, so one kind of proof can never be passed off as the other.
 *
 * A non-TypeScript peer reproduces them as
 * `HMAC-SHA256(token, "swarmbee-hello-v1|" + serverNonce + "|" + clientNonce + "|" + role + "|" + name)`
 * and `HMAC-SHA256(token, "swarmbee-welcome-v1|" + clientNonce + "|" + serverNonce)`,
 * nonces as lower-case hex, strings as UTF-8.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { NONCE_BYTES, type Role } from './messages/index.js';

/** Bytes of randomness in a token made by {@link generateClusterToken}. */
export const CLUSTER_TOKEN_BYTES = 32;

/** A fresh random nonce, lower-case hex. */
export function createNonce(): string {
  return randomBytes(NONCE_BYTES).toString('hex');
}

/** A new cluster join token: 32 random bytes, base64url (43 characters). */
export function generateClusterToken(): string {
  return randomBytes(CLUSTER_TOKEN_BYTES).toString('base64url');
}

function hmac(token: string, text: string): Uint8Array {
  return createHmac('sha256', token).update(text, 'utf8').digest();
}

export interface HelloProofInput {
  serverNonce: string;
  clientNonce: string;
  role: Role;
  name: string;
}

/** The client's proof: binds the token to this connection's nonces and to who the client says it is. */
export function helloProof(token: string, input: HelloProofInput): Uint8Array {
  const { serverNonce, clientNonce, role, name } = input;
  return hmac(token, `swarmbee-hello-v1|${serverNonce}|${clientNonce}|${role}|${name}`);
}

/** The server's proof, over the client's nonce first. */
export function welcomeProof(
  token: string,
  input: { clientNonce: string; serverNonce: string },
): Uint8Array {
  return hmac(token, `swarmbee-welcome-v1|${input.clientNonce}|${input.serverNonce}`);
}

/** Compares proofs in constant time (for equal lengths), so timing reveals nothing about the token. */
export function proofsMatch(expected: Uint8Array, received: Uint8Array): boolean {
  return expected.byteLength === received.byteLength && timingSafeEqual(expected, received);
}
