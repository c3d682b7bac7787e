//! Parsing of origin requests: the raw path under `/hls/` and the LL-HLS query parameters.
//!
//! Paths are taken raw (not percent-decoded): no valid name needs escaping, so any `%`, any
//! `.`/`..`/empty component or backslash is refused outright, which rules out traversal
//! however it is spelled.

use crate::reload::BlockingRequest;
use crate::resource::{Resource, valid_name};

/// The origin's path prefix.
pub const PREFIX: &str = "/hls/";

/// A parsed origin request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HlsRequest {
    /// Stream id.
    pub stream: String,
    /// Rendition name, for rendition resources.
    pub rendition: Option<String>,
    /// What is asked for.
    pub resource: Resource,
    /// `_HLS_msn` / `_HLS_part`.
    pub blocking: Option<BlockingRequest>,
    /// `_HLS_skip=YES` (or `v2`).
    pub skip: bool,
}

/// Why a request cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// No such resource name (404).
    #[error("not found")]
    NotFound,
    /// A path that tries to leave its directory or hides characters (400).
    #[error("bad path: {0}")]
    BadPath(&'static str),
    /// A malformed LL-HLS query parameter (400).
    #[error("bad query: {0}")]
    BadQuery(&'static str),
}

/// Parses a raw request path (starting with [`PREFIX`]) and query.
pub fn parse(path: &str, query: Option<&str>) -> Result<HlsRequest, RequestError> {
    let rest = path.strip_prefix(PREFIX).ok_or(RequestError::NotFound)?;
    if rest.contains('%') {
        return Err(RequestError::BadPath("encoded characters"));
    }
    let components: Vec<&str> = rest.split('/').collect();
    for c in &components {
        if c.is_empty() || *c == "." || *c == ".." {
            return Err(RequestError::BadPath("empty or relative path component"));
        }
        if c.contains('\\') || c.contains('\0') {
            return Err(RequestError::BadPath("backslash or NUL"));
        }
    }
    let (stream, rendition, file) = match components.as_slice() {
        [stream, file] => (*stream, None, *file),
        [stream, rendition, file] => (*stream, Some(*rendition), *file),
        _ => return Err(RequestError::NotFound),
    };
    if !valid_name(stream) || rendition.is_some_and(|r| !valid_name(r)) {
        return Err(RequestError::NotFound);
    }
    let resource = Resource::parse(file, rendition.is_some()).ok_or(RequestError::NotFound)?;
    let (blocking, skip) = parse_query(query.unwrap_or(""))?;
    Ok(HlsRequest {
        stream: stream.to_owned(),
        rendition: rendition.map(str::to_owned),
        resource,
        blocking,
        skip,
    })
}

/// Reads `_HLS_msn`, `_HLS_part` and `_HLS_skip`; other parameters (session ids, cache
/// busters) are ignored.
fn parse_query(query: &str) -> Result<(Option<BlockingRequest>, bool), RequestError> {
    let (mut msn, mut part, mut skip) = (None, None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match key {
            "_HLS_msn" => &mut msn,
            "_HLS_part" => &mut part,
            "_HLS_skip" => &mut skip,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(RequestError::BadQuery("repeated parameter"));
        }
    }
    let msn = msn
        .map(|v| decimal::<u64>(v).ok_or(RequestError::BadQuery("_HLS_msn")))
        .transpose()?;
    let part = part
        .map(|v| decimal::<u32>(v).ok_or(RequestError::BadQuery("_HLS_part")))
        .transpose()?;
    let skip = match skip {
        None => false,
        Some("YES" | "v2") => true,
        Some(_) => return Err(RequestError::BadQuery("_HLS_skip")),
    };
    let blocking = match (msn, part) {
        (Some(msn), part) => Some(BlockingRequest { msn, part }),
        (None, Some(_)) => return Err(RequestError::BadQuery("_HLS_part without _HLS_msn")),
        (None, None) => None,
    };
    Ok((blocking, skip))
}

/// A plain unsigned decimal (digits only, within range).
fn decimal<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::PlaylistKind;

    #[test]
    fn rendition_resources_and_blocking_queries_parse() {
        let r = parse(
            "/hls/live1/720p/live.m3u8",
            Some("_HLS_msn=12&_HLS_part=3&_HLS_skip=YES&sid=x"),
        )
        .expect("valid");
        assert_eq!(r.stream, "live1");
        assert_eq!(r.rendition.as_deref(), Some("720p"));
        assert_eq!(r.resource, Resource::Media(PlaylistKind::Live));
        assert_eq!(
            r.blocking,
            Some(BlockingRequest {
                msn: 12,
                part: Some(3)
            })
        );
        assert!(r.skip);
        let r = parse("/hls/live1/master.m3u8", None).expect("valid");
        assert_eq!(
            (r.rendition, r.resource),
            (None, Resource::Multivariant(PlaylistKind::Live))
        );
        let r = parse("/hls/s/audio/p4.2.m4s", Some("")).expect("valid");
        assert_eq!(r.resource, Resource::Part(4, 2));
    }

    #[test]
    fn traversal_and_encodings_are_bad_paths() {
        for path in [
            "/hls/../etc/passwd",
            "/hls/s/../../x",
            "/hls/s/720p/..",
            "/hls/s//live.m3u8",
            "/hls/s/720p%2F..%2Flive.m3u8",
            "/hls/s/%2e%2e/live.m3u8",
            "/hls/s/a\\b/live.m3u8",
            "/hls//etc/passwd",
            "/hls/s/./live.m3u8",
        ] {
            assert!(
                matches!(parse(path, None), Err(RequestError::BadPath(_))),
                "{path}"
            );
        }
    }

    #[test]
    fn unknown_names_are_not_found() {
        for path in [
            "/hls/s",
            "/hls/s/x/y/z",
            "/hls/s/720p/seg.ts",
            "/hls/s p/master.m3u8",
            "/other/s/master.m3u8",
        ] {
            assert_eq!(parse(path, None), Err(RequestError::NotFound), "{path}");
        }
    }

    #[test]
    fn malformed_ll_hls_parameters_are_bad_queries() {
        for query in [
            "_HLS_msn=",
            "_HLS_msn=-1",
            "_HLS_msn=1.5",
            "_HLS_msn=18446744073709551616",
            "_HLS_msn=1&_HLS_part=x",
            "_HLS_msn=1&_HLS_part=4294967296",
            "_HLS_part=1",
            "_HLS_msn=1&_HLS_msn=2",
            "_HLS_skip=NO",
            "_HLS_skip",
            "_HLS_msn",
        ] {
            assert!(
                matches!(
                    parse("/hls/s/720p/live.m3u8", Some(query)),
                    Err(RequestError::BadQuery(_))
                ),
                "{query}"
            );
        }
    }
}
