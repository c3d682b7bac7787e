//! Prometheus text exposition helpers shared by every family signaling writes.

use std::fmt::Write;

/// Write one `{series}{{{labels}le="bound"}} count` line per bound, counts made cumulative, then
/// the `+Inf` line. `counts` holds one entry per bound plus the open bucket last; `labels` is
/// empty or ends with a comma. Returns the total.
pub(crate) fn buckets<B: std::fmt::Display>(
    out: &mut String,
    series: &str,
    labels: &str,
    bounds: impl IntoIterator<Item = B>,
    counts: &[u64],
) -> u64 {
    let Some((open, closed)) = counts.split_last() else {
        return 0;
    };
    let mut total = 0;
    for (bound, n) in bounds.into_iter().zip(closed) {
        total += n;
        let _ = writeln!(out, "{series}{{{labels}le=\"{bound}\"}} {total}");
    }
    total += open;
    let _ = writeln!(out, "{series}{{{labels}le=\"+Inf\"}} {total}");
    total
}

/// One gauge family with a single unlabelled sample.
pub(crate) fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
}
