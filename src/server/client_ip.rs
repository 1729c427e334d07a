//! The address of the client a request came from. Behind the documented TLS proxy the TCP
//! peer is always the proxy, so the proxy's `X-Forwarded-For` (or, where the operator says
//! so, `Forwarded`) names the client; but anyone can send those headers, so they count only
//! when the peer is one of `GATEHOUSE_TRUSTED_PROXIES`, then only the header the proxy sets
//! (`GATEHOUSE_CLIENT_IP_HEADER`: a proxy passes the other through as the client wrote it),
//! and only the hops the trusted proxies appended.

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The client's address, as far as trusted proxies vouch for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// What the per-client limits count: an IPv4 address, or the /64 an IPv6 address is in.
    /// A subscriber, an office or a cloud host is given a whole /64 (RFC 6177's advice, and
    /// what providers do), and can use any address in it: counted address by address, one
    /// client would have limits without end.
    pub fn network(self) -> IpAddr {
        match canonical(self.0) {
            IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !(u128::from(u64::MAX)),
            )),
            v4 => v4,
        }
    }
}

impl std::fmt::Display for ClientIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The header the trusted proxies write the client's address in: only that one is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProxyHeader {
    /// `X-Forwarded-For`, which nginx, HAProxy, Caddy and most load balancers set.
    #[default]
    XForwardedFor,
    /// `Forwarded` (RFC 7239).
    Forwarded,
}

impl ProxyHeader {
    /// Parses `GATEHOUSE_CLIENT_IP_HEADER` (either name, in any case).
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Ok(ProxyHeader::XForwardedFor),
            "forwarded" => Ok(ProxyHeader::Forwarded),
            other => Err(format!(
                "`{other}` is not a header Gatehouse reads the client's address from: X-Forwarded-For or Forwarded"
            )),
        }
    }
}

/// Who may name the client, and in which header (the middleware's state).
#[derive(Clone, Debug, Default)]
pub struct Proxies {
    pub trusted: Vec<IpNet>,
    pub header: ProxyHeader,
}

/// Parses `GATEHOUSE_TRUSTED_PROXIES`: CIDRs or single addresses, separated by commas or
/// spaces (`10.0.0.0/8, 192.168.1.10`).
pub fn parse_trusted(raw: &str) -> Result<Vec<IpNet>, String> {
    raw.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| {
                    format!("`{s}` is neither a CIDR range (10.0.0.0/8) nor an IP address")
                })
        })
        .collect()
}

fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    let ip = canonical(ip);
    proxies.iter().any(|net| net.contains(&ip))
}

/// An IPv4 peer reached over an IPv6 socket is still that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// One hop as a proxy writes it: `203.0.113.7`, `203.0.113.7:51234`, `[2001:db8::1]:443`,
/// `"[2001:db8::1]"` (the `Forwarded` header quotes IPv6).
fn parse_hop(raw: &str) -> Option<IpAddr> {
    let s = raw.trim().trim_matches('"');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sock) = s.parse::<SocketAddr>() {
        return Some(sock.ip());
    }
    let inner = s.strip_prefix('[')?.split(']').next()?;
    inner.parse().ok()
}

/// The hops a request passed, nearest last, from the one header the proxies set. `None`
/// when a hop cannot be read: a header that is not understood vouches for nothing.
fn hops(headers: &HeaderMap, header: ProxyHeader) -> Option<Vec<IpAddr>> {
    let mut out = Vec::new();
    match header {
        ProxyHeader::Forwarded => {
            for value in headers.get_all("forwarded") {
                for element in value.to_str().ok()?.split(',') {
                    let hop = element
                        .split(';')
                        .filter_map(|pair| pair.split_once('='))
                        .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                        .map(|(_, v)| v)?;
                    out.push(parse_hop(hop)?);
                }
            }
        }
        ProxyHeader::XForwardedFor => {
            for value in headers.get_all("x-forwarded-for") {
                for hop in value.to_str().ok()?.split(',') {
                    out.push(parse_hop(hop)?);
                }
            }
        }
    }
    Some(out)
}

/// The client behind `peer`: walking back from the nearest hop, the first address that is
/// not a trusted proxy. An untrusted peer is the client, whatever its headers say.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, proxies: &Proxies) -> IpAddr {
    let peer = canonical(peer);
    if !trusted(peer, &proxies.trusted) {
        return peer;
    }
    let Some(hops) = hops(headers, proxies.header) else {
        return peer;
    };
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        client = canonical(hop);
        if !trusted(client, &proxies.trusted) {
            break;
        }
    }
    client
}

/// Puts the request's `ClientIp` into its extensions for every handler; its state is
/// `GATEHOUSE_TRUSTED_PROXIES` and `GATEHOUSE_CLIENT_IP_HEADER`.
pub async fn identify(
    State(proxies): State<Arc<Proxies>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let ip = resolve(peer.ip(), req.headers(), &proxies);
    req.extensions_mut().insert(ClientIp(ip));
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Proxies at `ranges` that set X-Forwarded-For (the default).
    fn xff(ranges: &str) -> Proxies {
        Proxies {
            trusted: parse_trusted(ranges).unwrap(),
            header: ProxyHeader::XForwardedFor,
        }
    }

    /// Proxies at `ranges` that set Forwarded.
    fn fwd(ranges: &str) -> Proxies {
        Proxies {
            trusted: parse_trusted(ranges).unwrap(),
            header: ProxyHeader::Forwarded,
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let h = headers(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")]);
        for proxies in [xff("10.0.0.0/8"), fwd("10.0.0.0/8"), Proxies::default()] {
            assert_eq!(resolve(ip("203.0.113.9"), &h, &proxies), ip("203.0.113.9"));
        }
    }

    #[test]
    fn a_trusted_proxy_names_the_client_and_spoofed_hops_before_it_do_not_count() {
        let proxies = xff("10.0.0.0/8, 192.168.1.10");
        // The client sent "1.1.1.1" itself; the proxy appended the address it saw.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.4")]);
        assert_eq!(resolve(ip("10.0.0.2"), &h, &proxies), ip("198.51.100.4"));
        // Two trusted proxies in a row.
        let h = headers(&[("x-forwarded-for", "198.51.100.4, 192.168.1.10")]);
        assert_eq!(resolve(ip("10.0.0.2"), &h, &proxies), ip("198.51.100.4"));
        // Split over two header lines.
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "198.51.100.4"),
        ]);
        assert_eq!(resolve(ip("10.0.0.2"), &h, &proxies), ip("198.51.100.4"));
    }

    #[test]
    fn only_the_header_the_proxy_sets_counts() {
        // The proxy sets one header and passes the other through as the client wrote it.
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.4"),
            ("forwarded", "for=203.0.113.66"),
        ]);
        assert_eq!(
            resolve(ip("10.0.0.1"), &h, &xff("10.0.0.1")),
            ip("198.51.100.4")
        );
        assert_eq!(
            resolve(ip("10.0.0.1"), &h, &fwd("10.0.0.1")),
            ip("203.0.113.66")
        );
        // A proxy that set nothing leaves the peer as the client.
        let h = headers(&[("forwarded", "for=203.0.113.66")]);
        assert_eq!(
            resolve(ip("10.0.0.1"), &h, &xff("10.0.0.1")),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn forwarded_is_read_with_ports_and_quoted_ipv6() {
        let proxies = fwd("10.0.0.1");
        let h = headers(&[("forwarded", "for=\"[2001:db8::7]:4711\";proto=https")]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &proxies), ip("2001:db8::7"));
        let h = headers(&[("forwarded", "for=192.0.2.60;proto=http, for=198.51.100.17")]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &proxies), ip("198.51.100.17"));
        let h = headers(&[("x-forwarded-for", "198.51.100.4:5555")]);
        assert_eq!(
            resolve(ip("10.0.0.1"), &h, &xff("10.0.0.1")),
            ip("198.51.100.4")
        );
    }

    #[test]
    fn unreadable_headers_vouch_for_nothing() {
        for bad in ["not-an-ip", "1.2.3.4, , 5.6.7.8", "unknown"] {
            let h = headers(&[("x-forwarded-for", bad)]);
            assert_eq!(
                resolve(ip("10.0.0.1"), &h, &xff("10.0.0.1")),
                ip("10.0.0.1"),
                "{bad}"
            );
        }
        let h = headers(&[("forwarded", "for=_hidden")]);
        assert_eq!(
            resolve(ip("10.0.0.1"), &h, &fwd("10.0.0.1")),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn ipv4_peers_on_ipv6_sockets_match_ipv4_ranges() {
        let h = headers(&[("x-forwarded-for", "198.51.100.4")]);
        assert_eq!(
            resolve(ip("::ffff:127.0.0.1"), &h, &xff("127.0.0.0/8")),
            ip("198.51.100.4")
        );
    }

    #[test]
    fn limits_count_an_ipv6_client_by_its_64() {
        let net = |s: &str| ClientIp(ip(s)).network();
        assert_eq!(net("198.51.100.4"), ip("198.51.100.4"));
        assert_eq!(net("::ffff:198.51.100.4"), ip("198.51.100.4"));
        assert_eq!(net("2001:db8:7:1:abcd:ef:1:2"), ip("2001:db8:7:1::"));
        assert_eq!(net("2001:db8:7:1::9"), net("2001:db8:7:1:ffff::"));
        assert_ne!(net("2001:db8:7:1::9"), net("2001:db8:7:2::9"));
    }

    #[test]
    fn the_header_setting_is_one_of_the_two_names() {
        assert_eq!(
            ProxyHeader::parse("X-Forwarded-For"),
            Ok(ProxyHeader::XForwardedFor)
        );
        assert_eq!(
            ProxyHeader::parse(" forwarded "),
            Ok(ProxyHeader::Forwarded)
        );
        let err = ProxyHeader::parse("X-Real-IP").unwrap_err();
        assert!(err.contains("x-real-ip"), "{err}");
    }

    #[test]
    fn bad_ranges_are_named() {
        let err = parse_trusted("10.0.0.0/8, 10.0.0.0/33").unwrap_err();
        assert!(err.contains("10.0.0.0/33"), "{err}");
        assert!(parse_trusted("proxy.internal").is_err());
        assert_eq!(parse_trusted("").unwrap(), vec![]);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn address() -> impl Strategy<Value = IpAddr> {
            prop_oneof![
                any::<[u8; 4]>().prop_map(IpAddr::from),
                any::<[u8; 16]>().prop_map(IpAddr::from),
            ]
        }

        /// A header value as a client may send it: addresses, junk, ports, brackets.
        fn header_value() -> impl Strategy<Value = String> {
            prop::collection::vec(
                prop_oneof![
                    address().prop_map(|a| a.to_string()),
                    address().prop_map(|a| format!("for={a}")),
                    address().prop_map(|a| format!("for=\"[{a}]:80\"")),
                    "[ -~]{0,20}",
                ],
                0..6,
            )
            .prop_map(|parts| parts.join(", "))
        }

        fn headers_of(xff: &str, fwd: &str) -> HeaderMap {
            let mut h = HeaderMap::new();
            if let Ok(v) = xff.parse() {
                h.insert("x-forwarded-for", v);
            }
            if let Ok(v) = fwd.parse() {
                h.insert("forwarded", v);
            }
            h
        }

        proptest! {
            /// A client that talks to Gatehouse directly cannot choose the address the
            /// phone shows and the rate limits count, whatever it writes in its headers.
            #[test]
            fn an_untrusted_peer_is_always_the_client(
                peer in any::<[u8; 4]>(), xff in header_value(), fwd in header_value(),
            ) {
                let peer = IpAddr::from(peer);
                prop_assume!(!trusted(peer, &parse_trusted("10.0.0.0/8").unwrap()));
                for proxies in [super::xff("10.0.0.0/8"), super::fwd("10.0.0.0/8")] {
                    prop_assert_eq!(resolve(peer, &headers_of(&xff, &fwd), &proxies), peer);
                }
            }

            /// Behind a trusted proxy the answer is the peer or an address the headers
            /// name, never one made up, and it is a trusted proxy only when every hop is.
            #[test]
            fn behind_a_trusted_proxy_the_client_is_a_named_hop(
                xff in header_value(), fwd in header_value(),
            ) {
                let peer = ip("10.1.2.3");
                let h = headers_of(&xff, &fwd);
                for proxies in [super::xff("10.0.0.0/8"), super::fwd("10.0.0.0/8")] {
                    let client = resolve(peer, &h, &proxies);
                    let named: Vec<IpAddr> = hops(&h, proxies.header).unwrap_or_default().into_iter().map(canonical).collect();
                    prop_assert!(client == peer || named.contains(&client), "{} from {:?}", client, named);
                    if trusted(client, &proxies.trusted) {
                        prop_assert!(named.iter().all(|a| trusted(*a, &proxies.trusted)));
                    }
                }
            }
        }
    }
}
