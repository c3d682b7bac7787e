//! Content filters: a chain of [`Filter`]s every message passes before it is stamped.
//!
//! Filters are pure (time is passed in) and node-local. A filter may keep per-user state (the
//! repeat filter does) and must bound it. An ML classifier plugs in as one more `Filter`; one
//! that needs I/O should run out of band and feed its verdicts in as a word list or a ban.

use std::collections::HashMap;

use crate::auth::Role;
use crate::protocol::MessageKind;

/// What a filter sees.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// Author id.
    pub user_id: &'a str,
    /// Author role (moderators and above skip most filters).
    pub role: Role,
    /// Message kind.
    pub kind: MessageKind,
    /// The text.
    pub text: &'a str,
    /// Wall clock, ms since the epoch.
    pub now_ms: u64,
}

/// A filter's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Let it through (to the next filter).
    Pass,
    /// Refuse it; the reason is shown to the author only.
    Reject(String),
}

/// One link of the chain.
pub trait Filter: Send {
    /// Short name, for logs.
    fn name(&self) -> &'static str;
    /// Judge one message.
    fn check(&mut self, message: &Candidate<'_>) -> Verdict;
    /// The message passed every filter and the ledger and was posted (for stateful filters).
    fn posted(&mut self, _message: &Candidate<'_>) {}
}

/// Settings of the built-in filters.
#[derive(Debug, Clone)]
pub struct FilterConfig {
    /// Longest message in characters (default 500).
    pub max_chars: usize,
    /// Words refused anywhere in a message (case-insensitive, whole words).
    pub banned_words: Vec<String>,
    /// Whether viewers and subscribers may post links (VIPs and above always may).
    pub allow_links: bool,
    /// Share of upper-case letters over which a long message is refused (default 0.7).
    pub max_caps_ratio: f32,
    /// Seconds during which the same user may not post the same text again (default 30).
    pub repeat_window_secs: u64,
}

impl Default for FilterConfig {
    fn default() -> Self {
        FilterConfig {
            max_chars: 500,
            banned_words: Vec::new(),
            allow_links: false,
            max_caps_ratio: 0.7,
            repeat_window_secs: 30,
        }
    }
}

/// The ordered chain; the first rejection wins.
pub struct FilterChain {
    filters: Vec<Box<dyn Filter>>,
}

impl std::fmt::Debug for FilterChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.filters.iter().map(|x| x.name()).collect();
        f.debug_struct("FilterChain").field("filters", &names).finish()
    }
}

impl FilterChain {
    /// The built-in chain: shape, length, emote kind, banned words, links, caps, repeats.
    pub fn standard(config: &FilterConfig) -> Self {
        let mut chain = FilterChain { filters: vec![] };
        chain.push(Shape);
        chain.push(Length(config.max_chars));
        chain.push(EmoteKind);
        if !config.banned_words.is_empty() {
            chain.push(BannedWords(
                config.banned_words.iter().map(|w| w.to_lowercase()).collect(),
            ));
        }
        if !config.allow_links {
            chain.push(Links);
        }
        chain.push(Caps(config.max_caps_ratio));
        chain.push(Repeats::new(config.repeat_window_secs * 1000));
        chain
    }

    /// Append a filter (e.g. a classifier) at the end of the chain.
    pub fn push(&mut self, filter: impl Filter + 'static) {
        self.filters.push(Box::new(filter));
    }

    /// Tell every filter a message was posted.
    pub fn posted(&mut self, message: &Candidate<'_>) {
        for f in &mut self.filters {
            f.posted(message);
        }
    }

    /// Run the chain.
    pub fn check(&mut self, message: &Candidate<'_>) -> Verdict {
        for f in &mut self.filters {
            let v = f.check(message);
            if v != Verdict::Pass {
                return v;
            }
        }
        Verdict::Pass
    }
}

/// Whether every word of `text` is an emote code `:name:` (and there is at least one).
pub fn all_emotes(text: &str) -> bool {
    let mut any = false;
    for word in text.split_whitespace() {
        let inner = word.strip_prefix(':').and_then(|w| w.strip_suffix(':'));
        match inner {
            Some(name)
                if (1..=32).contains(&name.len())
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
            {
                any = true
            }
            _ => return false,
        }
    }
    any
}

/// Not empty, no control characters.
struct Shape;
impl Filter for Shape {
    fn name(&self) -> &'static str {
        "shape"
    }
    fn check(&mut self, m: &Candidate<'_>) -> Verdict {
        if m.text.trim().is_empty() {
            return Verdict::Reject("empty message".into());
        }
        if m.text.chars().any(|c| c.is_control()) {
            return Verdict::Reject("control characters are not allowed".into());
        }
        Verdict::Pass
    }
}

struct Length(usize);
impl Filter for Length {
    fn name(&self) -> &'static str {
        "length"
    }
    fn check(&mut self, m: &Candidate<'_>) -> Verdict {
        if m.text.chars().count() > self.0 {
            Verdict::Reject(format!("longer than {} characters", self.0))
        } else {
            Verdict::Pass
        }
    }
}

struct EmoteKind;
impl Filter for EmoteKind {
    fn name(&self) -> &'static str {
        "emote-kind"
    }
    fn check(&mut self, m: &Candidate<'_>) -> Verdict {
        if m.kind == MessageKind::Emote && !all_emotes(m.text) {
            Verdict::Reject("an emote message holds only :emote: codes".into())
        } else {
            Verdict::Pass
        }
    }
}

struct BannedWords(Vec<String>);
impl Filter for BannedWords {
    fn name(&self) -> &'static str {
        "banned-words"
    }
    fn check(&mut self, m: &Candidate<'_>) -> Verdict {
        let lower = m.text.to_lowercase();
        let hit = lower
            .split(|c: char| !c.is_alphanumeric())
            .any(|w| !w.is_empty() && self.0.iter().any(|b| b == w));
        if hit {
            Verdict::Reject("message contains a banned word".into())
        } else {
            Verdict::Pass
        }
    }
}

struct Links;
impl Filter for Links {
    fn name(&self) -> &'static str {
        "links"
    }
    fn check(&mut self, m: &Candidate<'_>) -> Verdict {
        if m.role >= Role::Vip {
            return Verdict::Pass;
        }
        if m.text.split_whitespace().any(looks_like_link) {
            Verdict::Reject("links are not allowed".into())
        } else {
            Verdict::Pass
        }
    }
}

fn looks_like_link(word: &str) -> bool {
    let w = word.to_ascii_lowercase();
    if w.contains("://") || w.starts_with("www.") {
        return true;
    }
    // host.tld with a plausible alphabetic TLD, e.g. "evil.com/x"; "1.5" or "e.g." are not links.
    let host = w.split('/').next().unwrap_or("");
    let host = host.trim_end_matches(['.', ',', '!', '?', ')']);
    let mut parts = host.rsplit('.');
    match (parts.next(), parts.next()) {
        (Some(tld), Some(name)) => {
            (2..=6).contains(&tld.len())
                && tld.bytes().all(|b| b.is_ascii_lowercase())
                && !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && name.len() >= 2
        }
        _ => false,
    }
}

struct Caps(f32);
impl Filter for Caps {
    fn name(&self) -> &'static str {
        "caps"
    }
    fn check(&mut self, m: &Candidate<'_>) -> Verdict {
        if m.role.can_moderate() {
            return Verdict::Pass;
        }
        let letters = m.text.chars().filter(|c| c.is_alphabetic()).count();
        let upper = m.text.chars().filter(|c| c.is_uppercase()).count();
        if letters >= 12 && upper as f32 > self.0 * letters as f32 {
            Verdict::Reject("too many capital letters".into())
        } else {
            Verdict::Pass
        }
    }
}

/// Same user, same text, within the window: refused. Also refuses one character repeated
/// more than 20 times in a row.
struct Repeats {
    window_ms: u64,
    last: HashMap<String, (u64, u64)>,
}

impl Repeats {
    fn new(window_ms: u64) -> Self {
        Repeats {
            window_ms,
            last: HashMap::new(),
        }
    }
}

impl Filter for Repeats {
    fn name(&self) -> &'static str {
        "repeats"
    }
    fn check(&mut self, m: &Candidate<'_>) -> Verdict {
        if m.role.can_moderate() {
            return Verdict::Pass;
        }
        let mut run = 0;
        let mut prev = None;
        for c in m.text.chars() {
            run = if Some(c) == prev { run + 1 } else { 1 };
            prev = Some(c);
            if run > 20 && !c.is_whitespace() {
                return Verdict::Reject("too much repetition".into());
            }
        }
        let hash = fnv1a(m.text.trim().to_lowercase().as_bytes());
        match self.last.get(m.user_id) {
            Some((t, h)) if *h == hash && m.now_ms < *t + self.window_ms => {
                Verdict::Reject("you just sent that".into())
            }
            _ => Verdict::Pass,
        }
    }

    fn posted(&mut self, m: &Candidate<'_>) {
        if self.last.len() > 10_000 {
            let horizon = m.now_ms.saturating_sub(self.window_ms);
            self.last.retain(|_, (t, _)| *t > horizon);
        }
        let hash = fnv1a(m.text.trim().to_lowercase().as_bytes());
        self.last.insert(m.user_id.to_string(), (m.now_ms, hash));
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(text: &str, now_ms: u64) -> Candidate<'_> {
        Candidate {
            user_id: "u",
            role: Role::Viewer,
            kind: MessageKind::Text,
            text,
            now_ms,
        }
    }

    fn chain() -> FilterChain {
        FilterChain::standard(&FilterConfig {
            banned_words: vec!["Badword".into()],
            ..Default::default()
        })
    }

    #[test]
    fn standard_chain() {
        let mut c = chain();
        assert_eq!(c.check(&cand("hello there", 0)), Verdict::Pass);
        assert!(matches!(c.check(&cand("   ", 0)), Verdict::Reject(_)));
        assert!(matches!(c.check(&cand(&"a".repeat(501), 0)), Verdict::Reject(_)));
        assert!(matches!(c.check(&cand("you BADWORD!", 0)), Verdict::Reject(_)));
        assert_eq!(c.check(&cand("badwordsmith is fine", 0)), Verdict::Pass);
        assert!(matches!(
            c.check(&cand("see https://x.io", 0)),
            Verdict::Reject(_)
        ));
        assert!(matches!(
            c.check(&cand("go to evil.com now", 0)),
            Verdict::Reject(_)
        ));
        assert_eq!(c.check(&cand("it is 1.5 times e.g. better", 0)), Verdict::Pass);
        assert!(matches!(
            c.check(&cand("THIS IS ALL SHOUTING", 0)),
            Verdict::Reject(_)
        ));
        assert_eq!(c.check(&cand("OK then", 0)), Verdict::Pass);
        assert!(matches!(c.check(&cand(&"z".repeat(30), 0)), Verdict::Reject(_)));
    }

    #[test]
    fn repeats_expire() {
        let mut c = chain();
        assert_eq!(c.check(&cand("same", 1_000)), Verdict::Pass);
        // Only posted messages count as repeats.
        assert_eq!(c.check(&cand("same", 1_000)), Verdict::Pass);
        c.posted(&cand("same", 1_000));
        assert!(matches!(c.check(&cand("Same ", 5_000)), Verdict::Reject(_)));
        assert_eq!(c.check(&cand("same", 31_001)), Verdict::Pass);
    }

    #[test]
    fn vip_may_link_and_emotes_are_checked() {
        let mut c = chain();
        let mut m = cand("https://ok.example", 0);
        m.role = Role::Vip;
        assert_eq!(c.check(&m), Verdict::Pass);
        assert!(all_emotes(":Kappa: :wave_1:"));
        assert!(!all_emotes(":Kappa: hi"));
        assert!(!all_emotes(""));
        let mut e = cand("hello", 0);
        e.kind = MessageKind::Emote;
        assert!(matches!(c.check(&e), Verdict::Reject(_)));
    }
}
