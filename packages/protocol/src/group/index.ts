/**
 * Tensor-parallel groups over the data plane: the description a group's members share,
 * the hub a data-plane server routes group links through, and each member's `AllReduce`.
 */
export {
  ALL_REDUCE_ALGORITHMS,
  type AllReduceAlgorithm,
  checkTensorGroup,
  linkedRanks,
  type TensorGroup,
} from './description.js';
export {
  GROUP_EVENTS,
  type GroupJoinedEvent,
  type GroupLeftEvent,
  type GroupMemberLostEvent,
} from './events.js';
export { DEFAULT_UNCLAIMED_LINK_MS, GroupHub, type HubMember } from './hub.js';
export {
  DEFAULT_GROUP_JOIN_TIMEOUT_MS,
  DEFAULT_SUM_TIMEOUT_MS,
  type GroupMemberOptions,
} from './join.js';
export { DataPlaneAllReduce } from './member.js';
