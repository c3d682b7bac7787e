// Landing page: create streams with the admin token, list them with links to publish and watch.
// Created streams (with their key, which the server shows only once) are kept in localStorage.

import { createStream, getStream } from './api.js';

const TOKEN_KEY = 'fanout.adminToken';
const STREAMS_KEY = 'fanout.streams';

const $ = (id) => document.getElementById(id);
const tokenInput = $('admin-token');
tokenInput.value = localStorage.getItem(TOKEN_KEY) ?? '';
tokenInput.addEventListener('change', () => localStorage.setItem(TOKEN_KEY, tokenInput.value));

/** [{id, title, streamKey?}], newest first. */
function savedStreams() {
  try {
    return JSON.parse(localStorage.getItem(STREAMS_KEY)) ?? [];
  } catch {
    return [];
  }
}

function saveStreams(streams) {
  localStorage.setItem(STREAMS_KEY, JSON.stringify(streams));
  render();
}

function remember(stream) {
  const others = savedStreams().filter((s) => s.id !== stream.id);
  const known = savedStreams().find((s) => s.id === stream.id);
  // Opening a stream by id must not lose a key saved when it was created.
  const streamKey = stream.streamKey ?? known?.streamKey;
  saveStreams([{ id: stream.id, title: stream.title ?? '', streamKey }, ...others]);
}

$('create-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const error = $('create-error');
  error.hidden = true;
  localStorage.setItem(TOKEN_KEY, tokenInput.value);
  try {
    remember(await createStream(tokenInput.value, $('title').value));
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
  }
});

$('open-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const id = $('open-id').value.trim();
  if (id) remember({ id });
});

function render() {
  const list = $('streams');
  const streams = savedStreams();
  $('empty').hidden = streams.length > 0;
  list.replaceChildren();
  for (const stream of streams) {
    const card = $('stream-card').content.firstElementChild.cloneNode(true);
    const field = (name) => card.querySelector(`[data-field=${name}]`);
    field('title').textContent = stream.title || '(untitled)';
    field('id').textContent = stream.id;
    const publish = new URLSearchParams({ stream: stream.id });
    if (stream.streamKey) publish.set('key', stream.streamKey);
    card.querySelector('[data-link=publish]').href = `publish.html?${publish}`;
    card.querySelector('[data-link=watch]').href = `watch.html?stream=${encodeURIComponent(stream.id)}`;
    field('key-note').textContent = stream.streamKey ? '' : '(no key saved: enter it on the publish page)';
    card.querySelector('[data-action=forget]').addEventListener('click', () => {
      saveStreams(savedStreams().filter((s) => s.id !== stream.id));
    });
    list.append(card);
    getStream(stream.id)
      .then((s) => { field('status').textContent = `${s.status}, ${s.viewers} viewer${s.viewers === 1 ? '' : 's'}`; })
      .catch(() => { field('status').textContent = 'unknown to the server'; });
  }
}

render();
