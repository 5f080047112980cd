import { subjectToken } from '../../ports/bus/bus.js';

/**
 * The subjects of the SFU relay. A relayed track has a random id (`relayId`, letters and
 * digits only, so it is one subject token as it is): its packets travel on
 * `chorus.sfu.rtp.<relayId>`, published once by the publisher's node and fanned out by
 * NATS to every node that subscribed; its end on `chorus.sfu.end.<relayId>`. Each node
 * takes the relay's control requests (interest, keyframe requests) on its own subject.
 */
export const rtpSubject = (relayId: string): string => `chorus.sfu.rtp.${relayId}`;

export const endSubject = (relayId: string): string => `chorus.sfu.end.${relayId}`;

export const relayControlSubject = (nodeId: string): string => `chorus.node.${subjectToken(nodeId)}.sfu`;

/** What a relay id looks like (checked on every control message: it is untrusted input). */
export const RELAY_ID = /^[A-Za-z0-9]{8,32}$/;
