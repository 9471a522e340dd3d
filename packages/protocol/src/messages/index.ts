/**
 * Every message SwarmBee sends, as one discriminated union on `type`, grouped by the
 * plane that may carry it. A connection speaks the handshake plane until it is
 * authenticated, then the control plane (role `worker`) or the data plane (roles `stage`
 * and `coordinator`); a message from another plane is refused like an unknown type.
 */
import type { z } from 'zod';
import { errorMessageSchema } from './common.js';
import { controlSchemas, type ProfileRequestMessage, type StatsRequestMessage } from './control.js';
import { dataSchemas } from './data.js';
import { handshakeSchemas, type Role } from './handshake.js';
import type { FedRoundMessage, TrainCallMessage, TrainLoadMessage } from './training.js';

export * from './common.js';
export * from './control.js';
export * from './data.js';
export * from './handshake.js';
export * from './training.js';

type MessageIn<Schemas> = { [K in keyof Schemas]: z.infer<Schemas[K]> }[keyof Schemas];

export type HandshakeMessage = MessageIn<typeof handshakeSchemas>;
export type ControlMessage = MessageIn<typeof controlSchemas>;
export type DataMessage = MessageIn<typeof dataSchemas>;
export type Message = HandshakeMessage | ControlMessage | DataMessage;
export type MessageType = Message['type'];
/** The message whose `type` is T. */
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;

/** Which set of messages a connection accepts at a given moment. */
export type MessagePlane = 'handshake' | 'control' | 'data';
/** The planes an authenticated channel can speak. */
export type ChannelPlane = 'control' | 'data';
export type PlaneMessage<P extends MessagePlane> = P extends 'handshake'
  ? HandshakeMessage
  : P extends 'control'
    ? ControlMessage
    : DataMessage;

/** Schemas by type for each plane: what `decode` checks a frame against. */
export const PLANE_SCHEMAS: { readonly [P in MessagePlane]: Readonly<Record<string, z.ZodType>> } =
  {
    handshake: handshakeSchemas,
    control: controlSchemas,
    data: dataSchemas,
  };

/** Every message schema by type, whatever the plane. */
export const MESSAGE_SCHEMAS: Readonly<Record<MessageType, z.ZodType>> = {
  ...handshakeSchemas,
  ...controlSchemas,
  ...dataSchemas,
  error: errorMessageSchema,
};

/** The plane an authenticated connection speaks, decided by the connecting side's role. */
export function planeOfRole<R extends Role>(role: R): PlaneOfRole<R> {
  return (role === 'worker' ? 'control' : 'data') as PlaneOfRole<R>;
}
export type PlaneOfRole<R extends Role> = R extends 'worker' ? 'control' : 'data';

/** Messages that expect one reply carrying the same `requestId`. */
export type RequestMessage =
  | ProfileRequestMessage
  | StatsRequestMessage
  | TrainLoadMessage
  | TrainCallMessage
  | FedRoundMessage;

/** The reply type of each request type; an `error` with the same requestId can answer any. */
export const REPLY_TYPES = {
  'profile.request': 'profile.result',
  'stats.request': 'stats',
  'train.load': 'train.ready',
  'train.call': 'train.result',
  'fed.round': 'fed.update',
} as const satisfies Record<RequestMessage['type'], MessageType>;

/** The message that answers request T. */
export type ReplyTo<T extends RequestMessage> = MessageOf<(typeof REPLY_TYPES)[T['type']]>;

/** Message types that may answer a pending request (matched by `requestId`). */
export const REPLY_MESSAGE_TYPES: ReadonlySet<string> = new Set([
  ...Object.values(REPLY_TYPES),
  'error',
]);
