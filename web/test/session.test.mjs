// The pure parts of the WHIP/WHEP session code, in Node.

import test from 'node:test';
import assert from 'node:assert/strict';
import { parseIceServerLinks, HttpError } from '../js/session.js';

test('reads TURN servers from RFC 9725 Link headers and ignores other links', () => {
  const header = '<stun:stun.example.net>; rel="ice-server", '
    + '<turn:turn.example.net:3478?transport=udp>; rel="ice-server"; username="1700000000:v"; credential="c2VjcmV0", '
    + '</whip/abc/s1/layer>; rel="urn:ietf:params:whep:ext:core:layer"';
  assert.deepEqual(parseIceServerLinks(header), [
    { urls: 'stun:stun.example.net' },
    { urls: 'turn:turn.example.net:3478?transport=udp', username: '1700000000:v', credential: 'c2VjcmV0' },
  ]);
  assert.deepEqual(parseIceServerLinks(null), []);
});

test('only statuses that retrying cannot fix are permanent', () => {
  for (const status of [400, 401, 403, 404]) assert.equal(new HttpError(status, '').permanent, true);
  for (const status of [409, 429, 500, 502, 503]) assert.equal(new HttpError(status, '').permanent, false);
  assert.equal(new HttpError(401, 'bad key\n').message, 'HTTP 401: bad key');
  assert.equal(new HttpError(400, '{"error":"malformed SDP: no media"}').message, 'HTTP 400: malformed SDP: no media');
});
