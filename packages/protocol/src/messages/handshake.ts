/**
 * The three messages of the authentication handshake, exchanged before a connection
 * becomes a control- or data-plane channel. The cluster token itself never travels:
 * each side proves it holds the token with an HMAC over fresh nonces (see `auth.ts`).
 */
import { z } from 'zod';
import { bytesSchema, countSchema, errorMessageSchema, nameSchema } from './common.js';

/** Bytes of a handshake nonce before hex encoding. */
export const NONCE_BYTES = 32;
/** Bytes of an HMAC-SHA256 proof. */
export const PROOF_BYTES = 32;

/** Who is connecting, which also decides the plane the channel speaks. */
export const ROLES = ['worker', 'stage', 'coordinator'] as const;
/**
 * `worker`: a worker daemon joining the coordinator (control plane).
 * `stage`: a stage sending its output to the next stage or, from the last stage, to the
 * coordinator (data plane). `coordinator`: the coordinator feeding stage 0 (data plane).
 */
export type Role = (typeof ROLES)[number];

const nonceSchema = z
  .string()
  .regex(new RegExp(`^[0-9a-f]{${NONCE_BYTES * 2}}$`), 'must be a hex nonce');
const proofSchema = bytesSchema.refine(
  (proof) => proof.byteLength === PROOF_BYTES,
  `must be ${PROOF_BYTES} bytes`,
);

/** Server → client, first frame on every connection. */
export const challengeSchema = z.object({
  type: z.literal('challenge'),
  protocolVersion: countSchema,
  /** Fresh random hex, never reused: a recorded `hello` cannot be replayed. */
  nonce: nonceSchema,
});

/** Client → server: who it is and proof = HMAC(token, serverNonce|clientNonce|role|name). */
export const helloSchema = z.object({
  type: z.literal('hello'),
  protocolVersion: countSchema,
  role: z.enum(ROLES),
  name: nameSchema,
  /** Fresh random hex the server must fold into its own proof. */
  clientNonce: nonceSchema,
  proof: proofSchema,
});

/** Server → client: proof = HMAC(token, clientNonce|serverNonce), so the client trusts the server too. */
export const welcomeSchema = z.object({
  type: z.literal('welcome'),
  proof: proofSchema,
});

export type ChallengeMessage = z.infer<typeof challengeSchema>;
export type HelloMessage = z.infer<typeof helloSchema>;
export type WelcomeMessage = z.infer<typeof welcomeSchema>;

export const handshakeSchemas = {
  challenge: challengeSchema,
  hello: helloSchema,
  welcome: welcomeSchema,
  error: errorMessageSchema,
} as const;
