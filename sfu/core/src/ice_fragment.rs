//! Trickle-ICE SDP fragments (RFC 8840), as carried by WHIP/WHEP PATCH requests.

use str0m::{Candidate, IceCreds};

use crate::error::SfuError;

/// What a PATCH body says: maybe new credentials (an ICE restart), and candidates.
#[derive(Debug, Default)]
pub struct IceFragment {
    /// New remote credentials: the client restarts ICE.
    pub restart: Option<IceCreds>,
    /// Remote candidates to add.
    pub candidates: Vec<Candidate>,
    /// The client says it has no more candidates.
    pub end_of_candidates: bool,
}

impl IceFragment {
    /// Parse an `application/trickle-ice-sdpfrag` body.
    pub fn parse(body: &str) -> Result<IceFragment, SfuError> {
        let mut frag = IceFragment::default();
        let mut ufrag = None;
        let mut pwd = None;
        for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(v) = line.strip_prefix("a=ice-ufrag:") {
                ufrag = Some(v.to_string());
            } else if let Some(v) = line.strip_prefix("a=ice-pwd:") {
                pwd = Some(v.to_string());
            } else if let Some(c) = line.strip_prefix("a=candidate:") {
                let c = Candidate::from_sdp_string(&format!("candidate:{c}"))
                    .map_err(|e| SfuError::MalformedFragment(e.to_string()))?;
                frag.candidates.push(c);
            } else if line == "a=end-of-candidates" {
                frag.end_of_candidates = true;
            } else if line.starts_with("a=") || line.starts_with("m=") {
                // a=group, a=mid, m= lines frame the candidates; nothing to do.
            } else {
                return Err(SfuError::MalformedFragment(format!(
                    "unexpected line: {}",
                    line.chars().take(60).collect::<String>()
                )));
            }
        }
        match (ufrag, pwd) {
            (Some(ufrag), Some(pass)) => frag.restart = Some(IceCreds { ufrag, pass }),
            (None, None) => {}
            _ => return Err(SfuError::MalformedFragment("ice-ufrag without ice-pwd".into())),
        }
        Ok(frag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_candidates_and_restart() {
        let body = "a=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdefghijkl\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\na=end-of-candidates\r\n";
        let f = IceFragment::parse(body).expect("valid fragment");
        assert_eq!(f.candidates.len(), 1);
        assert!(f.end_of_candidates);
        assert_eq!(f.restart.map(|c| c.ufrag), Some("abcd".to_string()));
    }

    #[test]
    fn rejects_garbage() {
        assert!(IceFragment::parse("hello").is_err());
        assert!(IceFragment::parse("a=candidate:garbage").is_err());
        assert!(IceFragment::parse("a=ice-ufrag:x").is_err());
    }
}
