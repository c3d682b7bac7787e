// The stream API of the signaling server (/api/v1/streams), as the pages use it.

/** Creates a stream; needs the admin token. Returns the server's JSON, streamKey included. */
export async function createStream(adminToken, title) {
  const res = await fetch(apiUrl('streams'), {
    method: 'POST',
    headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ title }),
  });
  if (res.status !== 201) throw new Error(`creating the stream failed: HTTP ${res.status} ${await res.text()}`);
  return res.json();
}

/** The public view of a stream: {id, title, status, viewers, whipUrl, whepUrl}. */
export async function getStream(id) {
  const res = await fetch(apiUrl(`streams/${encodeURIComponent(id)}`));
  if (!res.ok) throw new Error(`stream ${id}: HTTP ${res.status}`);
  return res.json();
}

/**
 * The WHIP and WHEP URLs of a stream, absolute, and the ICE servers (TURN) the server offers.
 * Asks the API, and falls back to the server's fixed layout so that publishing still works when
 * the API is unreachable or private.
 */
export async function streamUrls(id) {
  let whipUrl = `/whip/${encodeURIComponent(id)}`;
  let whepUrl = `/whep/${encodeURIComponent(id)}`;
  const [stream, servers] = await Promise.all([getStream(id).catch(() => null), iceServers()]);
  whipUrl = stream?.whipUrl || whipUrl;
  whepUrl = stream?.whepUrl || whepUrl;
  // The server may answer root-relative URLs; make them absolute against this page.
  return {
    whipUrl: new URL(whipUrl, location.href).href,
    whepUrl: new URL(whepUrl, location.href).href,
    iceServers: servers,
  };
}

/** TURN servers with fresh credentials, in RTCPeerConnection's shape; [] when none or on error. */
export async function iceServers() {
  try {
    const res = await fetch(apiUrl('ice-servers'));
    if (!res.ok) return [];
    return (await res.json()).iceServers ?? [];
  } catch {
    return [];
  }
}

/**
 * POST a heartbeat for stream `id`: `{sid}` counts a player, `{latencyMs, protocol}` reports how
 * far behind it plays (both may go together). Best effort: never throws.
 */
export async function postHeartbeat(id, body) {
  try {
    await fetch(apiUrl(`streams/${encodeURIComponent(id)}/heartbeat`), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
  } catch {
    // A lost heartbeat is replaced by the next one.
  }
}

function apiUrl(path) {
  return new URL(`/api/v1/${path}`, location.href).href;
}
