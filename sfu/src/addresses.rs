//! Which addresses to advertise as ICE host candidates.

use std::net::{IpAddr, Ipv4Addr};

use tracing::warn;

/// The explicit `public` addresses, or else every non-loopback interface address; plus
/// 127.0.0.1 when `loopback` is asked for (tests, or a viewer on the same machine).
pub fn candidate_ips(public: &[IpAddr], loopback: bool) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = if public.is_empty() {
        match if_addrs::get_if_addrs() {
            Ok(ifs) => ifs
                .into_iter()
                .map(|i| i.ip())
                .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
                // Link-local IPv6 needs a scope id that ICE candidates cannot carry.
                .filter(|ip| !matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80))
                .collect(),
            Err(e) => {
                warn!("cannot list network interfaces: {e}");
                Vec::new()
            }
        }
    } else {
        public.to_vec()
    };
    if loopback && !ips.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)) {
        ips.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    if ips.is_empty() {
        warn!("no usable network address found: advertising 127.0.0.1 only");
        ips.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    ips
}
