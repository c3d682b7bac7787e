// The chat panel: joins a stream's chat room with a guest token from the signaling server and
// shows messages stamped with stream time (mm:ss since the stream went live).
//
//   mountChat(element, streamId)   -> { send(text), close() }
//
// Protocol: docs/chat.md (version 1). Frames may arrive coalesced as {"type":"batch"}.

import { getStream } from './api.js';

const NAME_KEY = 'fanout.chatName';

function clock(ms) {
  if (ms == null) return '--:--';
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/**
 * A guest token for `stream`'s chat room. A private stream's needs the page's viewer token
 * (`?token=` in its URL), sent as the bearer.
 */
async function guestToken(stream, name) {
  const headers = { 'Content-Type': 'application/json' };
  const viewerToken = new URLSearchParams(location.search).get('token');
  if (viewerToken) headers.Authorization = `Bearer ${viewerToken}`;
  const res = await fetch(new URL('/api/v1/chat/guest-token', location.href), {
    method: 'POST',
    headers,
    body: JSON.stringify({ stream, name }),
  });
  if (!res.ok) throw new Error(`guest token: HTTP ${res.status}`);
  return (await res.json()).token;
}

export async function mountChat(root, streamId) {
  root.innerHTML = `
    <h2>Chat <small class="presence"></small></h2>
    <ol class="chat-log" aria-live="polite"></ol>
    <form class="row chat-form">
      <input class="chat-name" type="text" maxlength="32" placeholder="name">
      <input class="chat-text" type="text" maxlength="500" placeholder="say something" autocomplete="off">
      <button type="submit">Send</button>
    </form>
    <p class="error chat-error"></p>`;
  const log = root.querySelector('.chat-log');
  const presence = root.querySelector('.presence');
  const errorLine = root.querySelector('.chat-error');
  const nameInput = root.querySelector('.chat-name');
  const textInput = root.querySelector('.chat-text');
  nameInput.value = localStorage.getItem(NAME_KEY) || `viewer${Math.floor(Math.random() * 1000)}`;

  const stream = await getStream(streamId);
  if (!stream.chatUrl) throw new Error('this server runs no chat');
  let ws;
  let closed = false;

  const render = (m) => {
    const li = document.createElement('li');
    li.dataset.id = m.id;
    const time = document.createElement('time');
    time.textContent = clock(m.streamTime);
    const who = document.createElement('b');
    who.textContent = m.user?.name ?? 'system';
    if (m.user?.color) who.style.color = m.user.color;
    const text = document.createElement('span');
    text.textContent = m.kind === 'cheer' ? `${m.text} (${m.bits} bits)` : m.text;
    li.append(time, ' ', who, ': ', text);
    log.append(li);
    while (log.children.length > 300) log.firstChild.remove();
    log.scrollTop = log.scrollHeight;
  };

  const handle = (f) => {
    switch (f.type) {
      case 'batch': f.messages.forEach(handle); break;
      case 'history': f.messages.forEach(render); break;
      case 'message': render(f); break;
      case 'deleted': log.querySelector(`li[data-id="${f.id}"]`)?.remove(); break;
      case 'presence': presence.textContent = `${f.count} here`; break;
      case 'hello': presence.textContent = `${f.presence} here`; break;
      case 'error': errorLine.textContent = f.message; break;
      default: break;
    }
  };

  const connect = async () => {
    const token = await guestToken(streamId, nameInput.value.trim() || 'guest');
    const url = new URL(stream.chatUrl);
    url.searchParams.set('token', token);
    ws = new WebSocket(url);
    ws.onmessage = (ev) => {
      try { handle(JSON.parse(ev.data)); } catch { /* a frame we cannot read is skipped */ }
    };
    ws.onopen = () => { errorLine.textContent = ''; };
    ws.onclose = () => {
      if (!closed) setTimeout(() => connect().catch((e) => { errorLine.textContent = e.message; }), 2000);
    };
  };
  await connect();

  root.querySelector('.chat-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = textInput.value.trim();
    if (!text || ws?.readyState !== WebSocket.OPEN) return;
    ws.send(JSON.stringify({ type: 'send', text }));
    textInput.value = '';
  });
  nameInput.addEventListener('change', () => {
    localStorage.setItem(NAME_KEY, nameInput.value.trim());
    ws?.close(); // reconnects with a token for the new name
  });

  return {
    send: (text) => ws?.send(JSON.stringify({ type: 'send', text })),
    close: () => { closed = true; ws?.close(); },
  };
}

/** Mounts the panel into `#chat` for the page's `?stream=` id, if any; explains failures inline. */
export function autoMount() {
  const root = document.getElementById('chat');
  const id = new URLSearchParams(location.search).get('stream');
  if (!root || !id) return;
  mountChat(root, id).catch((e) => { root.textContent = `chat unavailable: ${e.message}`; });
}
