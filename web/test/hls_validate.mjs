// Strict check of every playlist a Fanout stream serves, with hls-parser in strict mode
// (HLS.setOptions({strictMode: true}): any rule it knows, LL-HLS included, throws).
//
//   node test/hls_validate.mjs --phase live --base http://127.0.0.1:8080 [--stream test]
//   node test/hls_validate.mjs --phase vod  --base http://127.0.0.1:8080 [--stream test]
//   node test/hls_validate.mjs --phase vod  --dir <data_dir>/hls/test    # from disk
//
// live: master.m3u8; for each rendition it names, live.m3u8 plain, blocking on the hinted part
//       (_HLS_msn + _HLS_part), blocking on the open segment (_HLS_msn alone), as a delta update
//       (_HLS_skip=YES) and the three together as hls.js asks; dvr.m3u8 and the stream's
//       dvr.m3u8. Blocking answers must contain what they were asked for.
// vod:  vod.m3u8 (multivariant) and each rendition's vod.m3u8: PLAYLIST-TYPE VOD, ENDLIST, at
//       least one segment, and every init segment and segment it names present (GET over HTTP
//       for the first and last, every one on disk with --dir).
//
// stdout: one JSON line {ok, checked: [{name, kind, ...}], errors: [...]}; exit 1 on any error.

import HLS from 'hls-parser';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from './harness.mjs';

const args = parseArgs(process.argv.slice(2), { phase: 'live', base: '', stream: 'test', dir: '', timeout: 10 },
  (a) => (a.dir ? [] : ['base']));
HLS.setOptions({ strictMode: true });

const checked = [];
const errors = [];

/** Where playlists come from: the origin over HTTP, or the data directory. */
const source = args.dir
  ? {
    name: (rel) => path.join(args.dir, rel),
    async text(rel) { return readFile(path.join(args.dir, rel), 'utf8'); },
    async exists(rel) { return stat(path.join(args.dir, rel)).then((s) => s.isFile() && s.size > 0, () => false); },
  }
  : {
    name: (rel) => `${args.base.replace(/\/$/, '')}/hls/${args.stream}/${rel}`,
    async text(rel) {
      const res = await fetch(this.name(rel), { signal: AbortSignal.timeout(args.timeout * 1000) });
      const body = await res.text();
      if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${body.trim()}`);
      const type = res.headers.get('content-type');
      if (type !== 'application/vnd.apple.mpegurl') throw new Error(`Content-Type ${type}`);
      return body;
    },
    async exists(rel) {
      const res = await fetch(this.name(rel), { signal: AbortSignal.timeout(args.timeout * 1000) });
      const size = (await res.arrayBuffer()).byteLength;
      return res.status === 200 && size > 0;
    },
  };

/** Fetches and strictly parses one playlist; records the outcome; returns it or null. */
async function check(rel, kind, expect = () => {}) {
  const entry = { name: source.name(rel), kind };
  const started = Date.now();
  try {
    const text = await source.text(rel);
    entry.ms = Date.now() - started;
    const playlist = HLS.parse(text);
    if (kind.startsWith('master') !== playlist.isMasterPlaylist) {
      throw new Error(`expected a ${kind.startsWith('master') ? 'multivariant' : 'media'} playlist`);
    }
    if (!playlist.isMasterPlaylist) {
      entry.segments = playlist.segments.length;
      entry.parts = playlist.segments.reduce((n, s) => n + (s.parts?.length ?? 0), 0);
      entry.skip = playlist.skip ?? 0;
      entry.endlist = playlist.endlist;
      entry.mediaSequence = playlist.mediaSequenceBase ?? 0;
    } else {
      entry.variants = playlist.variants.length;
    }
    expect(playlist, text);
    checked.push(entry);
    return { playlist, text };
  } catch (err) {
    entry.error = err.message;
    checked.push(entry);
    errors.push(`${entry.name} (${kind}): ${err.message}`);
    return null;
  }
}

/** Rendition directories a multivariant playlist names (video variants and audio groups). */
function renditions(master, suffix) {
  const uris = new Set();
  for (const v of master.variants) {
    uris.add(v.uri);
    for (const a of v.audio ?? []) if (a.uri) uris.add(a.uri);
  }
  return [...uris].map((u) => {
    if (!u.endsWith(`/${suffix}`)) throw new Error(`${u} is not a ${suffix} playlist`);
    return u.slice(0, -suffix.length - 1);
  });
}

/** The part the preload hint names, {msn, part}. */
function hinted(text) {
  const m = /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p(\d+)\.(\d+)\.m4s"/.exec(text);
  if (!m) throw new Error('no preload hint for a part');
  return { msn: Number(m[1]), part: Number(m[2]) };
}

const lists = (text, uri) => text.split('\n').some((l) => l.includes(`URI="${uri}"`) || l.trim() === uri);

async function live() {
  const master = await check('master.m3u8', 'master');
  if (!master) return;
  let names;
  try {
    names = renditions(master.playlist, 'live.m3u8');
  } catch (err) {
    errors.push(err.message);
    return;
  }
  for (const name of names) {
    const plain = await check(`${name}/live.m3u8`, 'live', (p) => {
      if (p.endlist) throw new Error('the live playlist has ENDLIST');
      if (!p.partTargetDuration) throw new Error('no EXT-X-PART-INF');
      if (!p.lowLatencyCompatibility?.canBlockReload) throw new Error('no CAN-BLOCK-RELOAD=YES');
    });
    if (!plain) continue;
    const next = hinted(plain.text);
    // The part the hint names is not published yet: the origin holds the answer until it is.
    await check(`${name}/live.m3u8?_HLS_msn=${next.msn}&_HLS_part=${next.part}`, 'live-blocking-part', (_, text) => {
      if (!lists(text, `p${next.msn}.${next.part}.m4s`) && !lists(text, `p${next.msn + 1}.0.m4s`)) {
        throw new Error(`the answer does not list part ${next.msn}.${next.part}`);
      }
    });
    await check(`${name}/live.m3u8?_HLS_msn=${next.msn}`, 'live-blocking-segment', (_, text) => {
      if (!lists(text, `s${next.msn}.m4s`)) throw new Error(`the answer does not list segment ${next.msn} whole`);
    });
    await check(`${name}/live.m3u8?_HLS_skip=YES`, 'live-delta');
    const after = hinted((await source.text(`${name}/live.m3u8`)));
    await check(`${name}/live.m3u8?_HLS_msn=${after.msn}&_HLS_part=${after.part}&_HLS_skip=YES`, 'live-blocking-delta');
    await check(`${name}/dvr.m3u8`, 'dvr', (p) => {
      if (p.segments.length === 0) throw new Error('no segments');
    });
  }
  await check('dvr.m3u8', 'master-dvr', (p) => {
    for (const name of renditions(p, 'dvr.m3u8')) if (!names.includes(name)) throw new Error(`unknown rendition ${name}`);
  });
}

async function vod() {
  const master = await check('vod.m3u8', 'master-vod');
  if (!master) return;
  let names;
  try {
    names = renditions(master.playlist, 'vod.m3u8');
  } catch (err) {
    errors.push(err.message);
    return;
  }
  for (const name of names) {
    const entry = await check(`${name}/vod.m3u8`, 'vod', (p) => {
      if (p.playlistType !== 'VOD') throw new Error(`PLAYLIST-TYPE ${p.playlistType}`);
      if (!p.endlist) throw new Error('no ENDLIST');
      if (p.segments.length === 0) throw new Error('no segments');
    });
    if (!entry) continue;
    const { segments } = entry.playlist;
    const media = new Set();
    for (const s of args.dir ? segments : [segments[0], segments[segments.length - 1]]) {
      media.add(s.uri);
      if (s.map?.uri) media.add(s.map.uri);
    }
    for (const uri of media) {
      if (!(await source.exists(`${name}/${uri}`))) errors.push(`${source.name(`${name}/${uri}`)} is missing or empty`);
    }
    checked[checked.length - 1].mediaChecked = media.size;
  }
}

try {
  if (args.phase === 'live') await live();
  else if (args.phase === 'vod') await vod();
  else errors.push(`unknown phase ${args.phase}`);
} catch (err) {
  errors.push(err.message);
}
const ok = errors.length === 0 && checked.length > 0;
process.stdout.write(`${JSON.stringify({ ok, phase: args.phase, checked, errors })}\n`);
process.exit(ok ? 0 : 1);
