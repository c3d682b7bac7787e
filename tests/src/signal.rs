//! WHIP (RFC 9725) and WHEP over HTTP: POST an SDP offer, get an answer and a resource URL,
//! DELETE the resource to end the session.
//!
//! The HTTP client never uses a proxy (the environment's `HTTP_PROXY` must not send test
//! traffic elsewhere). Remote ICE candidates can be narrowed to loopback before an answer is
//! applied, see [`IcePolicy`].

use std::net::IpAddr;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, ETAG, LINK, LOCATION};
pub use reqwest::{StatusCode, Url};

/// How long one signalling request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a WHIP/WHEP exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    /// The URL does not parse, or is not http(s).
    #[error("bad URL {url:?}: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The request did not complete (connection refused, timeout...).
    #[error("{method} {url}: {source}")]
    Http {
        /// The HTTP method.
        method: &'static str,
        /// The URL requested.
        url: String,
        /// The transport error.
        source: reqwest::Error,
    },
    /// The server answered with an unexpected status.
    #[error("{method} {url}: status {status}: {body}")]
    Status {
        /// The HTTP method.
        method: &'static str,
        /// The URL requested.
        url: String,
        /// The status received.
        status: StatusCode,
        /// The start of the response body.
        body: String,
    },
    /// A 201 without a usable `Location` header (OBS would refuse it too).
    #[error("POST {url}: 201 without a valid Location header ({detail})")]
    MissingLocation {
        /// The endpoint.
        url: String,
        /// What was wrong.
        detail: String,
    },
    /// The response body is not an SDP answer.
    #[error("POST {url}: response is not an SDP answer: {detail}")]
    NotAnAnswer {
        /// The endpoint.
        url: String,
        /// What was wrong.
        detail: String,
    },
}

/// Which remote ICE candidates of an answer are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IcePolicy {
    /// Keep only candidates on a loopback address, so no packet leaves the machine.
    #[default]
    LoopbackOnly,
    /// Keep every candidate (two network namespaces joined by a veth pair, for instance).
    Any,
}

/// What a WHIP/WHEP endpoint returned for an offer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status (201 per the RFC).
    pub status: StatusCode,
    /// The SDP answer, as received.
    pub sdp: String,
    /// The session resource, resolved against the endpoint URL.
    pub location: Url,
    /// The `Location` header exactly as sent (relative or absolute).
    pub location_header: String,
    /// The `ETag` header, if any.
    pub etag: Option<String>,
    /// Every `Link` header (ICE servers are advertised there).
    pub links: Vec<String>,
    /// The response's `Content-Type`.
    pub content_type: Option<String>,
}

/// An HTTP client for signalling: no proxy, bounded timeouts.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .expect("a client without TLS or proxy configuration always builds")
}

/// Parses an http(s) URL.
pub fn parse_url(url: &str) -> Result<Url, SignalError> {
    let parsed = Url::parse(url).map_err(|e| SignalError::BadUrl {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(SignalError::BadUrl {
            url: url.to_owned(),
            reason: "scheme must be http or https".to_owned(),
        });
    }
    Ok(parsed)
}

/// Whether the URL's host is a loopback address (or `localhost`).
pub fn is_loopback_url(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => bare.eq_ignore_ascii_case("localhost"),
    }
}

/// POSTs an SDP offer to a WHIP or WHEP endpoint and returns the answer.
///
/// `bearer` goes into `Authorization: Bearer ...` (the stream key for WHIP, a viewer token for
/// a private WHEP stream). Anything but 201 is an error carrying the status and body.
pub async fn post_offer(
    client: &reqwest::Client,
    endpoint: &Url,
    bearer: Option<&str>,
    offer_sdp: &str,
) -> Result<Answer, SignalError> {
    let mut request = client
        .post(endpoint.clone())
        .header(CONTENT_TYPE, "application/sdp")
        .body(offer_sdp.to_owned());
    if let Some(token) = bearer {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = request.send().await.map_err(|source| SignalError::Http {
        method: "POST",
        url: endpoint.to_string(),
        source,
    })?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.text().await.map_err(|source| SignalError::Http {
        method: "POST",
        url: endpoint.to_string(),
        source,
    })?;
    if status != StatusCode::CREATED {
        return Err(SignalError::Status {
            method: "POST",
            url: endpoint.to_string(),
            status,
            body: truncate(&body, 500),
        });
    }
    let location_header = headers
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| SignalError::MissingLocation {
            url: endpoint.to_string(),
            detail: "no Location header".to_owned(),
        })?;
    let location = endpoint
        .join(&location_header)
        .map_err(|e| SignalError::MissingLocation {
            url: endpoint.to_string(),
            detail: format!("{location_header:?}: {e}"),
        })?;
    if !body.starts_with("v=0") {
        return Err(SignalError::NotAnAnswer {
            url: endpoint.to_string(),
            detail: truncate(&body, 200),
        });
    }
    let header_str = |name| {
        headers
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    Ok(Answer {
        status,
        sdp: body,
        location,
        location_header,
        etag: header_str(ETAG),
        links: headers
            .get_all(LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect(),
        content_type: header_str(CONTENT_TYPE),
    })
}

/// DELETEs a session resource; returns the status, whatever it is.
pub async fn delete_resource(
    client: &reqwest::Client,
    location: &Url,
    bearer: Option<&str>,
) -> Result<StatusCode, SignalError> {
    let mut request = client.delete(location.clone());
    if let Some(token) = bearer {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = request.send().await.map_err(|source| SignalError::Http {
        method: "DELETE",
        url: location.to_string(),
        source,
    })?;
    Ok(response.status())
}

/// Keeps the `a=candidate` lines of `sdp` that `policy` allows; every other line is untouched.
pub fn filter_candidates(sdp: &str, policy: IcePolicy) -> String {
    if policy == IcePolicy::Any {
        return sdp.to_owned();
    }
    sdp.split_inclusive('\n')
        .filter(|line| match candidate_address(line) {
            Some(address) => address.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()),
            None => true,
        })
        .collect()
}

/// The connection address of an `a=candidate:` line, `None` for any other line.
fn candidate_address(line: &str) -> Option<&str> {
    let rest = line.trim_end().strip_prefix("a=candidate:")?;
    // foundation component transport priority address port typ type ...
    Some(rest.split_whitespace().nth(4).unwrap_or(""))
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = "v=0\r\n\
        o=- 1 1 IN IP4 0.0.0.0\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
        a=candidate:1 1 udp 2130706431 127.0.0.1 8189 typ host\r\n\
        a=candidate:2 1 udp 2130706431 10.1.2.3 8189 typ host\r\n\
        a=candidate:3 1 udp 2130706431 abcd.local 8189 typ host\r\n\
        a=candidate:4 1 udp 2130706431 ::1 8189 typ host\r\n\
        a=end-of-candidates\r\n";

    #[test]
    fn loopback_policy_keeps_only_loopback_candidates() {
        let filtered = filter_candidates(ANSWER, IcePolicy::LoopbackOnly);
        assert!(filtered.contains("127.0.0.1 8189"));
        assert!(filtered.contains("::1 8189"));
        assert!(!filtered.contains("10.1.2.3"));
        assert!(!filtered.contains("abcd.local"));
        assert!(filtered.contains("a=end-of-candidates\r\n"));
        assert!(filtered.starts_with("v=0\r\no=-"));
    }

    #[test]
    fn any_policy_keeps_everything() {
        assert_eq!(filter_candidates(ANSWER, IcePolicy::Any), ANSWER);
    }

    #[test]
    fn loopback_urls() {
        let ok = |u: &str| is_loopback_url(&parse_url(u).expect("url"));
        assert!(ok("http://127.0.0.1:8080/whep/x"));
        assert!(ok("http://[::1]:8080/whep/x"));
        assert!(ok("http://localhost:8080/whep/x"));
        assert!(!ok("http://10.0.0.1:8080/whep/x"));
        assert!(!ok("http://example.com/whep/x"));
        assert!(parse_url("ftp://127.0.0.1/x").is_err());
    }

    #[test]
    fn relative_location_resolves_against_endpoint() {
        let endpoint = parse_url("http://127.0.0.1:8080/whip/abc").expect("url");
        let resolved = endpoint.join("/whip/abc/sess1").expect("join");
        assert_eq!(resolved.as_str(), "http://127.0.0.1:8080/whip/abc/sess1");
        let absolute = endpoint.join("http://127.0.0.1:9000/r/1").expect("join absolute");
        assert_eq!(absolute.as_str(), "http://127.0.0.1:9000/r/1");
    }
}
