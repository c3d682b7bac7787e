// Two watch pages join a stream's chat through the page's chat panel (guest tokens from the
// server); a message typed in one appears in the other.
//
//   node test/chat_panel.mjs --base URL --stream ID [--timeout 15]
//
// stdout: {"ok":true,"deliveredMs":..,"text":..,"streamTime":"mm:ss"|"--:--"}

import { parseArgs, run, openPage, pageUrl, waitFor } from './harness.mjs';

const args = parseArgs(process.argv.slice(2), { base: '', stream: '', timeout: 15 }, ['base', 'stream']);
const timeoutMs = args.timeout * 1000;

run(3 * timeoutMs, async (browser) => {
  const a = await openPage(browser, pageUrl(args.base, 'watch.html', { stream: args.stream }), 'chat-a');
  const b = await openPage(browser, pageUrl(args.base, 'watch.html', { stream: args.stream }), 'chat-b');
  for (const p of [a, b]) {
    await waitFor(async () => p.evaluate(() => /\d+ here/.test(document.querySelector('#chat .presence')?.textContent ?? '')), {
      timeoutMs, what: 'the chat panel to join',
    });
  }
  const text = `hello from a ${Date.now()}`;
  await a.fill('#chat .chat-text', text);
  const sent = Date.now();
  await a.click('#chat button[type=submit]');
  const line = await waitFor(async () => b.evaluate((t) => {
    const li = [...document.querySelectorAll('#chat .chat-log li')].find((x) => x.textContent.includes(t));
    return li ? { text: li.textContent, time: li.querySelector('time')?.textContent } : null;
  }, text), { timeoutMs, what: 'the message to reach the other page', intervalMs: 20 });
  return { deliveredMs: Date.now() - sent, text: line.text, streamTime: line.time };
});
