/**
 * Logs what the wire reports through node:diagnostics_channel — refused peers,
 * bad frames, silent peers — on a daemon's log, so an operator sees a wrong token
 * or a misbehaving client without a debugger — and tensor-parallel groups joined, a
 * member lost, a group left.
 */
import { subscribe } from 'node:diagnostics_channel';
import {
  type AuthFailedDiagnostic,
  DIAGNOSTICS,
  type FrameErrorDiagnostic,
  GROUP_EVENTS,
  type GroupJoinedEvent,
  type GroupLeftEvent,
  type GroupMemberLostEvent,
  type PeerTimeoutDiagnostic,
} from '@swarmbee/protocol';
import type { DaemonLog } from './log.js';

export function logProtocolEvents(log: DaemonLog): void {
  subscribe(DIAGNOSTICS.authFailed, (event) => {
    const e = event as AuthFailedDiagnostic;
    log.event(
      DIAGNOSTICS.authFailed,
      e,
      `refused a connection from ${e.address ?? 'unknown address'} (${e.role ?? 'no role'} ${e.name ?? ''}): ${e.code}: ${e.reason}`,
    );
  });
  subscribe(DIAGNOSTICS.frameError, (event) => {
    const e = event as FrameErrorDiagnostic;
    log.event(
      DIAGNOSTICS.frameError,
      e,
      `bad frame from ${e.peer?.name ?? 'unknown peer'}: ${e.code}: ${e.message}`,
    );
  });
  subscribe(DIAGNOSTICS.peerTimeout, (event) => {
    const e = event as PeerTimeoutDiagnostic;
    log.event(
      DIAGNOSTICS.peerTimeout,
      e,
      `peer ${e.peer?.name ?? 'unknown'} went silent; connection dropped`,
    );
  });
  subscribe(GROUP_EVENTS.joined, (event) => {
    const e = event as GroupJoinedEvent;
    log.event(
      GROUP_EVENTS.joined,
      e,
      `joined tensor group ${e.group} (stage ${e.stage}) as member ${e.rank} of ${e.size}, ${e.algorithm}, in ${Math.round(e.joinMs)} ms`,
    );
  });
  subscribe(GROUP_EVENTS.memberLost, (event) => {
    const e = event as GroupMemberLostEvent;
    log.event(
      GROUP_EVENTS.memberLost,
      e,
      `tensor group ${e.group} (stage ${e.stage}) lost member ${e.lost ?? 'unknown'}: ${e.code}: ${e.message}`,
    );
  });
  subscribe(GROUP_EVENTS.left, (event) => {
    const e = event as GroupLeftEvent;
    log.event(
      GROUP_EVENTS.left,
      e,
      `left tensor group ${e.group} (stage ${e.stage}) as member ${e.rank} after ${e.sums} sums`,
    );
  });
}
