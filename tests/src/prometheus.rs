//! A strict reader of the Prometheus text exposition format (version 0.0.4), for tests that
//! scrape `/metrics`: it refuses what a Prometheus server would refuse (a family declared
//! twice, samples of one family split apart, a `TYPE` after its samples, bad names, labels or
//! values) and returns the samples for assertions.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// One sample line: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name (a histogram's `_bucket`, `_sum`, `_count` included).
    pub name: String,
    /// Labels in the order written.
    pub labels: Vec<(String, String)>,
    /// The value (`+Inf`, `-Inf`, `NaN` included).
    pub value: f64,
}

impl Sample {
    /// The value of label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A parsed exposition.
#[derive(Debug, Default)]
pub struct Exposition {
    /// Every sample, in order.
    pub samples: Vec<Sample>,
    /// Family name -> `counter`, `gauge`, `histogram`, `summary` or `untyped`.
    pub types: HashMap<String, String>,
}

impl Exposition {
    /// The value of the sample `name` whose labels include every pair of `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
            .map(|s| s.value)
    }
}

impl Exposition {
    /// Every family declared with `# TYPE`, as a dashboard depends on it: one
    /// `name type label,label` line per family (label names sorted, a histogram's `le`
    /// included, `-` for none), sorted by name.
    pub fn families(&self) -> Vec<String> {
        let mut labels: BTreeMap<&str, BTreeSet<&str>> = self
            .types
            .keys()
            .map(|name| (name.as_str(), BTreeSet::new()))
            .collect();
        for sample in &self.samples {
            let family = family_of(&sample.name, &self.types);
            if let Some(names) = labels.get_mut(family) {
                names.extend(sample.labels.iter().map(|(k, _)| k.as_str()));
            }
        }
        labels
            .into_iter()
            .map(|(name, names)| {
                let names = names.into_iter().collect::<Vec<_>>().join(",");
                let names = if names.is_empty() { "-".to_string() } else { names };
                format!("{name} {} {names}", self.types[name])
            })
            .collect()
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// The family a sample belongs to (histogram and summary series share their base name).
fn family_of<'a>(name: &'a str, types: &HashMap<String, String>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && matches!(types.get(base).map(String::as_str), Some("histogram" | "summary"))
        {
            return base;
        }
    }
    name
}

fn parse_labels(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut labels = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once("=\"")
            .ok_or(format!("label without =\": {text}"))?;
        if !valid_name(key) || key.contains(':') {
            return Err(format!("bad label name {key:?}"));
        }
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    other => return Err(format!("bad escape {other:?} in {text}")),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => return Err(format!("unterminated label value in {text}")),
            }
        };
        if labels.iter().any(|(k, _): &(String, String)| k == key) {
            return Err(format!("label {key} twice in {text}"));
        }
        labels.push((key.to_string(), value));
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    Ok(labels)
}

/// Parse `text`, or say which line breaks the format.
pub fn parse(text: &str) -> Result<Exposition, String> {
    let mut out = Exposition::default();
    let mut helped = HashSet::new();
    let mut finished: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut series = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, ' ');
            let (kind, name) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            if !matches!(kind, "HELP" | "TYPE") {
                continue;
            }
            if !valid_name(name) {
                return Err(at("bad metric name".into()));
            }
            if finished.contains(name) || current.as_deref() == Some(name) && kind == "TYPE" {
                return Err(at(format!("{kind} for {name} after its samples")));
            }
            if kind == "HELP" && !helped.insert(name.to_string()) {
                return Err(at(format!("second HELP for {name}")));
            }
            if kind == "TYPE" {
                let t = words.next().unwrap_or("").trim();
                if !matches!(t, "counter" | "gauge" | "histogram" | "summary" | "untyped") {
                    return Err(at(format!("unknown type {t:?}")));
                }
                if out.types.insert(name.to_string(), t.to_string()).is_some() {
                    return Err(at(format!("second TYPE for {name}")));
                }
            }
            continue;
        }
        let (series_text, value) = line.rsplit_once(' ').ok_or(at("no value".into()))?;
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().map_err(|_| at(format!("bad value {v:?}")))?,
        };
        let (name, labels) = match series_text.split_once('{') {
            Some((name, rest)) => {
                let inner = rest.strip_suffix('}').ok_or(at("unclosed labels".into()))?;
                (name, parse_labels(inner).map_err(at)?)
            }
            None => (series_text, Vec::new()),
        };
        if !valid_name(name) {
            return Err(at("bad metric name".into()));
        }
        if !series.insert(series_text.to_string()) {
            return Err(at("the same series twice".into()));
        }
        let family = family_of(name, &out.types).to_string();
        if current.as_deref() != Some(family.as_str()) {
            if finished.contains(&family) {
                return Err(at(format!("samples of {family} are not together")));
            }
            if let Some(previous) = current.replace(family.clone()) {
                finished.insert(previous);
            }
        }
        if out.types.get(&family).map(String::as_str) == Some("counter") && value < 0.0 {
            return Err(at("negative counter".into()));
        }
        out.samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_valid_exposition() {
        let text = "# HELP a_total A.\n# TYPE a_total counter\na_total{k=\"x\\\"y\"} 3\n\
                    # TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.3\nh_count 2\n";
        let e = parse(text).expect("valid");
        assert_eq!(e.value("a_total", &[("k", "x\"y")]), Some(3.0));
        assert_eq!(e.value("h_bucket", &[("le", "+Inf")]), Some(2.0));
    }

    #[test]
    fn families_name_their_type_and_label_names() {
        let text = "# TYPE b_total counter\nb_total{y=\"1\",x=\"2\"} 3\nb_total{z=\"1\"} 3\n\
                    # TYPE h histogram\nh_bucket{p=\"a\",le=\"+Inf\"} 2\nh_sum{p=\"a\"} 0.3\nh_count{p=\"a\"} 2\n\
                    # TYPE a gauge\na 1\n# TYPE empty gauge\n";
        let e = parse(text).expect("valid");
        assert_eq!(
            e.families(),
            [
                "a gauge -",
                "b_total counter x,y,z",
                "empty gauge -",
                "h histogram le,p"
            ]
        );
    }

    #[test]
    fn refuses_what_prometheus_refuses() {
        for bad in [
            "# HELP a A.\n# HELP a A again.\na 1\n",
            "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x=\"1\"} 2\n",
            "a 1\n# TYPE a gauge\n",
            "a{x=\"1} 1\n",
            "a one\n",
            "1a 1\n",
            "a 1\na 2\n",
            "# TYPE c counter\nc -1\n",
        ] {
            assert!(parse(bad).is_err(), "accepted {bad:?}");
        }
    }
}
