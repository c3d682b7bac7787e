// The live read-out of a G2gMeter for people watching a bench page.

export function showLatency(results, element) {
  setInterval(() => {
    const recent = results.samples.slice(-30).sort((a, b) => a - b);
    if (recent.length === 0) {
      // Most likely the stream is not coming from a clock source (g2g-publish.html).
      if (results.decodeFailures) element.textContent = `${results.decodeFailures} frames without a readable clock`;
      return;
    }
    const median = recent[Math.floor(recent.length / 2)];
    element.textContent = `${median} ms (median of the last ${recent.length} frames), ` +
      `${results.width}×${results.height}, first frame after ${results.firstFrameMs} ms, ` +
      `${results.decodeFailures} unreadable frames`;
  }, 500);
}
