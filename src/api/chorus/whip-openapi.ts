import { z } from 'zod';
import { sessionId, whepParams, whipParams } from './whip-routes.js';

const errorBody = {
  'application/json': {
    schema: {
      type: 'object',
      properties: {
        error: {
          type: 'object',
          properties: { code: { type: 'string' }, message: { type: 'string' } },
          required: ['code', 'message'],
        },
      },
      required: ['error'],
    },
  },
};
const sdp = { 'application/sdp': { schema: { type: 'string', description: 'an SDP offer or answer' } } };

function pathParameters(schema: z.ZodObject): object[] {
  const props = (z.toJSONSchema(schema, { io: 'input' }) as { properties?: Record<string, object> })
    .properties;
  return Object.entries(props ?? {}).map(([name, s]) => ({ name, in: 'path', required: true, schema: s }));
}

const refusals = (what: string) => ({
  '400': { description: 'malformed path or SDP offer', content: errorBody },
  '401': { description: 'no token, or a bad, expired or unknown-key token', content: errorBody },
  '403': {
    description: `the token is for another room, names no identity, or lacks ${what}`,
    content: errorBody,
  },
  '404': {
    description: 'no such room (create it with POST /rooms first), or no such publisher',
    content: errorBody,
  },
  '413': { description: 'offer larger than 64 KiB', content: errorBody },
  '415': { description: 'content-type is not application/sdp', content: errorBody },
  '503': {
    description: 'room full (maxParticipants), SFU at its peer limit, or the cluster out of reach',
    content: errorBody,
  },
});

const session = (kind: string) => ({
  delete: {
    summary: `End a ${kind} session`,
    description:
      "Requires a token of the room (roomJoin) naming the session's own identity (another identity's: 404), or roomAdmin. Works on any node: the node holding the session ends it.",
    security: [{ accessToken: [] }],
    responses: {
      '200': { description: 'ended' },
      '401': { description: 'no valid token', content: errorBody },
      '403': { description: 'not a token of this room', content: errorBody },
      '404': { description: 'no such session (ended already)', content: errorBody },
    },
  },
  patch: {
    summary: "Trickle ICE: add the client's candidates (RFC 9725 4.3.1)",
    description:
      "An application/trickle-ice-sdpfrag body (RFC 8840): the offer's a=ice-ufrag/a=ice-pwd, m= sections with a=mid, a=candidate lines and a=end-of-candidates. If-Match: the session's ETag (from the 201; a missing If-Match is accepted). ICE restarts (If-Match: *, or other credentials) are not supported: 422. The server sends no candidates later (its answer carries all of them). Same token rules as DELETE; works on any node.",
    security: [{ accessToken: [] }],
    requestBody: {
      required: true,
      content: { 'application/trickle-ice-sdpfrag': { schema: { type: 'string' } } },
    },
    responses: {
      '204': { description: "candidates added; ETag: the session's" },
      '400': {
        description: 'malformed fragment, or more than 64 candidates for the session',
        content: errorBody,
      },
      '401': { description: 'no valid token', content: errorBody },
      '403': { description: 'not a token of this room', content: errorBody },
      '404': { description: 'no such session (ended already)', content: errorBody },
      '412': { description: "If-Match is not the session's ETag", content: errorBody },
      '415': { description: 'content-type is not application/trickle-ice-sdpfrag', content: errorBody },
      '422': { description: 'an ICE restart: not supported', content: errorBody },
    },
  },
});

/** A POST that takes an SDP offer and answers 201 with the answer. */
const offer = (summary: string, description: string, params: z.ZodObject, grants: string) => ({
  summary,
  description,
  security: [{ accessToken: [] }],
  parameters: pathParameters(params),
  requestBody: { required: true, content: sdp },
  responses: {
    '201': { description: 'the SDP answer; Location: the session', content: sdp },
    ...refusals(grants),
  },
});

/** The OpenAPI paths of WHIP and WHEP, merged into `/chorus/v1/openapi.json`. */
export function whipOpenApiPaths(prefix: string): Record<string, object> {
  const sessionParam = {
    name: 'session',
    in: 'path',
    required: true,
    schema: z.toJSONSchema(sessionId, { io: 'input' }),
  };
  return {
    [`${prefix}/whip/{room}`]: {
      post: offer(
        'Publish into a room (WHIP, RFC 9725)',
        "Requires a token for this room with roomJoin and canPublish; the publisher is the token's identity (audio counts as microphone, video as camera for canPublishSources). The room must exist.",
        whipParams,
        'roomJoin and canPublish',
      ),
    },
    [`${prefix}/whep/{room}/{identity}`]: {
      post: offer(
        "View a participant's tracks (WHEP)",
        "Requires a token for this room with roomJoin and canSubscribe; the viewer is the token's identity. Each receiving section of the offer gets one of the publisher's tracks of its kind and codec.",
        whepParams,
        'roomJoin and canSubscribe',
      ),
    },
    [`${prefix}/whip/{room}/{session}`]: {
      parameters: [...pathParameters(whipParams), sessionParam],
      ...session('WHIP'),
    },
    [`${prefix}/whep/{room}/{identity}/{session}`]: {
      parameters: [...pathParameters(whepParams), sessionParam],
      ...session('WHEP'),
    },
  };
}
