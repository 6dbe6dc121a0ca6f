//! Which destinations the notifier may call.
//!
//! Partners type their own postback and webhook URLs, so a URL is untrusted input: without a
//! check, `http://169.254.169.254/latest/meta-data/` or `http://10.0.0.5:8123/` would make the
//! notifier a proxy into the deployment's own network (server-side request forgery).
//!
//! Mechanism: [`classify`] names the class of one address, [`Allow`] is the deployment's policy
//! over those classes, and [`check_url`] applies both to a URL before any connection. A URL
//! whose host is a name is checked again after resolution, by the resolver in `send`, on the
//! very addresses the connection will use, so a name that resolves to a public address when
//! checked and to a private one when connecting (DNS rebinding) is still refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::{Ipv4Net, Ipv6Net};
use url::{Host, Url};

/// Which non-public networks a deployment lets the notifier call
/// (setting `CLICKLEDGER_NOTIFY_ALLOW`).
///
/// Cloud metadata addresses are refused by every setting: no receiver legitimately lives there,
/// and they hand out the deployment's own credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Allow {
    /// Public addresses only: the setting for production.
    #[default]
    Public,
    /// Public addresses and loopback: tests and a receiver on the same host.
    Loopback,
    /// Every class except cloud metadata: a deployment whose receivers sit in its own network.
    Private,
}

/// A `CLICKLEDGER_NOTIFY_ALLOW` value that is not one of the three settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CLICKLEDGER_NOTIFY_ALLOW must be public, loopback or private, not {0:?}")]
pub struct UnknownAllow(pub String);

impl FromStr for Allow {
    type Err = UnknownAllow;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "public" => Ok(Allow::Public),
            "loopback" => Ok(Allow::Loopback),
            "private" => Ok(Allow::Private),
            other => Err(UnknownAllow(other.to_owned())),
        }
    }
}

impl Allow {
    /// Whether this setting lets the notifier connect to an address of `class`.
    pub fn permits(self, class: AddressClass) -> bool {
        match (self, class) {
            (_, AddressClass::Metadata) => false,
            (_, AddressClass::Public) => true,
            (Allow::Loopback, AddressClass::Loopback) => true,
            (Allow::Private, _) => true,
            _ => false,
        }
    }
}

/// The kind of network an address belongs to, as far as calling it is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressClass {
    /// Routable on the internet.
    Public,
    /// 127.0.0.0/8 and ::1: this host.
    Loopback,
    /// RFC 1918, CGNAT (100.64.0.0/10), benchmarking (198.18.0.0/15), unique local (fc00::/7).
    Private,
    /// 169.254.0.0/16 and fe80::/10.
    LinkLocal,
    /// Cloud instance metadata services: 169.254.169.254, fd00:ec2::254, 100.100.100.200.
    Metadata,
    /// 0.0.0.0/8 and ::, which Linux connects to this host.
    Unspecified,
    /// 224.0.0.0/4 and ff00::/8.
    Multicast,
    /// Broadcast, the future-use block, protocol assignments and documentation ranges.
    Reserved,
}

impl AddressClass {
    /// The snake_case name used in errors, logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            AddressClass::Public => "public",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::LinkLocal => "link_local",
            AddressClass::Metadata => "metadata",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Multicast => "multicast",
            AddressClass::Reserved => "reserved",
        }
    }
}

impl std::fmt::Display for AddressClass {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// IPv4 ranges that are not public; the first range containing an address names its class, so
/// the metadata addresses come before the blocks that contain them.
const IPV4_CLASSES: [(Ipv4Net, AddressClass); 16] = [
    (v4(169, 254, 169, 254, 32), AddressClass::Metadata),
    (v4(100, 100, 100, 200, 32), AddressClass::Metadata),
    (v4(0, 0, 0, 0, 8), AddressClass::Unspecified),
    (v4(127, 0, 0, 0, 8), AddressClass::Loopback),
    (v4(10, 0, 0, 0, 8), AddressClass::Private),
    (v4(172, 16, 0, 0, 12), AddressClass::Private),
    (v4(192, 168, 0, 0, 16), AddressClass::Private),
    (v4(100, 64, 0, 0, 10), AddressClass::Private),
    (v4(198, 18, 0, 0, 15), AddressClass::Private),
    (v4(169, 254, 0, 0, 16), AddressClass::LinkLocal),
    (v4(224, 0, 0, 0, 4), AddressClass::Multicast),
    // 240.0.0.0/4 includes the broadcast address 255.255.255.255.
    (v4(240, 0, 0, 0, 4), AddressClass::Reserved),
    (v4(192, 0, 0, 0, 24), AddressClass::Reserved),
    (v4(192, 0, 2, 0, 24), AddressClass::Reserved),
    (v4(198, 51, 100, 0, 24), AddressClass::Reserved),
    (v4(203, 0, 113, 0, 24), AddressClass::Reserved),
];

/// IPv6 ranges that are not public, first match wins. `::`, `::1` and addresses that carry an
/// IPv4 address are handled before this table.
const IPV6_CLASSES: [(Ipv6Net, AddressClass); 8] = [
    (v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254], 128), AddressClass::Metadata),
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), AddressClass::Private),
    // Deprecated site-local addresses, still routed inside some networks.
    (v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), AddressClass::Private),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), AddressClass::LinkLocal),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), AddressClass::Multicast),
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), AddressClass::Reserved),
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), AddressClass::Reserved),
    // Discard-only prefix.
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), AddressClass::Reserved),
];

/// NAT64's well-known prefix: the last 32 bits are the IPv4 address a translator connects to.
const NAT64: Ipv6Net = v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96);

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix)
}

const fn v6(segments: [u16; 8], prefix: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), prefix)
}

/// The class of `address`. IPv6 forms that reach an IPv4 host (IPv4-mapped `::ffff:a.b.c.d`,
/// IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`) are classified as that IPv4 address,
/// so `::ffff:127.0.0.1` is loopback and not a way around the policy.
pub fn classify(address: IpAddr) -> AddressClass {
    match address {
        IpAddr::V4(v4_address) => classify_v4(v4_address),
        IpAddr::V6(v6_address) => classify_v6(v6_address),
    }
}

fn classify_v4(address: Ipv4Addr) -> AddressClass {
    IPV4_CLASSES
        .iter()
        .find(|(network, _)| network.contains(&address))
        .map_or(AddressClass::Public, |(_, class)| *class)
}

fn classify_v6(address: Ipv6Addr) -> AddressClass {
    if address.is_unspecified() {
        return AddressClass::Unspecified;
    }
    if address.is_loopback() {
        return AddressClass::Loopback;
    }
    // `to_ipv4` covers both the mapped and the compatible forms; `::` and `::1`, which it would
    // also turn into IPv4 addresses, are handled above.
    if let Some(embedded) = address.to_ipv4() {
        return classify_v4(embedded);
    }
    if NAT64.contains(&address) {
        let [_, _, _, _, _, _, high, low] = address.segments();
        let embedded = (u32::from(high) << 16) | u32::from(low);
        return classify_v4(Ipv4Addr::from(embedded));
    }
    IPV6_CLASSES
        .iter()
        .find(|(network, _)| network.contains(&address))
        .map_or(AddressClass::Public, |(_, class)| *class)
}

/// Why a destination is not called. [`Refusal::code`] is the stable part, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Only `http` and `https` are delivered.
    #[error("scheme {0:?} is not allowed: only http and https")]
    Scheme(String),
    /// The URL does not parse, has no host, or carries a user name or password.
    #[error("unusable URL: {0}")]
    Url(String),
    /// The host is, or resolves to, an address the deployment does not permit.
    #[error("{host} is {address}, a {class} address")]
    Address { host: String, address: IpAddr, class: AddressClass },
    /// The host name did not resolve to any address.
    #[error("cannot resolve {0}")]
    Resolve(String),
}

impl Refusal {
    /// A stable snake_case code; delivery errors start with it.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Scheme(_) => "scheme_not_allowed",
            Refusal::Url(_) => "bad_url",
            Refusal::Address { .. } => "address_not_allowed",
            Refusal::Resolve(_) => "resolve_failed",
        }
    }
}

/// Parses `url` and checks everything that can be checked before resolving: the scheme, that
/// there is a host and no credentials, and, when the host is an IP address, its class. A host
/// name passes here and is checked by the resolver on every address it resolves to.
///
/// The returned `Url` is the one to request, so what was checked is what is called (hosts such
/// as `2130706433` or `0x7f.1` are already normalised to `127.0.0.1` by the parser).
pub fn check_url(url: &str, allow: Allow) -> Result<Url, Refusal> {
    let parsed = Url::parse(url).map_err(|error| Refusal::Url(error.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Refusal::Scheme(parsed.scheme().to_owned()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Refusal::Url("a user name or password in the URL".to_owned()));
    }
    let address = match parsed.host() {
        None => return Err(Refusal::Url("no host".to_owned())),
        Some(Host::Domain(_)) => return Ok(parsed),
        Some(Host::Ipv4(v4_address)) => IpAddr::V4(v4_address),
        Some(Host::Ipv6(v6_address)) => IpAddr::V6(v6_address),
    };
    let class = classify(address);
    if !allow.permits(class) {
        return Err(Refusal::Address { host: parsed.host_str().unwrap_or_default().to_owned(), address, class });
    }
    Ok(parsed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn classify_names_the_class_of_each_range() {
        let table = [
            ("8.8.8.8", AddressClass::Public),
            ("1.1.1.1", AddressClass::Public),
            ("172.32.0.1", AddressClass::Public),
            ("100.128.0.1", AddressClass::Public),
            ("2606:4700:4700::1111", AddressClass::Public),
            ("127.0.0.1", AddressClass::Loopback),
            ("127.255.255.254", AddressClass::Loopback),
            ("::1", AddressClass::Loopback),
            ("10.1.2.3", AddressClass::Private),
            ("172.16.0.1", AddressClass::Private),
            ("172.31.255.255", AddressClass::Private),
            ("192.168.1.1", AddressClass::Private),
            ("100.64.0.1", AddressClass::Private),
            ("100.127.255.255", AddressClass::Private),
            ("198.18.0.1", AddressClass::Private),
            ("198.19.255.255", AddressClass::Private),
            ("fc00::1", AddressClass::Private),
            ("fd12:3456::1", AddressClass::Private),
            ("169.254.1.1", AddressClass::LinkLocal),
            ("fe80::1", AddressClass::LinkLocal),
            ("169.254.169.254", AddressClass::Metadata),
            ("fd00:ec2::254", AddressClass::Metadata),
            ("100.100.100.200", AddressClass::Metadata),
            ("0.0.0.0", AddressClass::Unspecified),
            ("0.1.2.3", AddressClass::Unspecified),
            ("::", AddressClass::Unspecified),
            ("224.0.0.1", AddressClass::Multicast),
            ("239.255.255.250", AddressClass::Multicast),
            ("ff02::1", AddressClass::Multicast),
            ("255.255.255.255", AddressClass::Reserved),
            ("240.0.0.1", AddressClass::Reserved),
            ("192.0.0.8", AddressClass::Reserved),
            ("192.0.2.1", AddressClass::Reserved),
            ("198.51.100.7", AddressClass::Reserved),
            ("203.0.113.9", AddressClass::Reserved),
            ("2001:db8::1", AddressClass::Reserved),
            // IPv6 forms that reach an IPv4 host are classified as that host.
            ("::ffff:127.0.0.1", AddressClass::Loopback),
            ("::ffff:169.254.169.254", AddressClass::Metadata),
            ("::ffff:10.0.0.1", AddressClass::Private),
            ("::ffff:8.8.8.8", AddressClass::Public),
            ("::127.0.0.1", AddressClass::Loopback),
            ("::169.254.169.254", AddressClass::Metadata),
            ("64:ff9b::127.0.0.1", AddressClass::Loopback),
            ("64:ff9b::8.8.8.8", AddressClass::Public),
        ];
        for (address, expected) in table {
            let parsed: IpAddr = address.parse().unwrap();
            assert_eq!(classify(parsed), expected, "{address}");
        }
    }

    #[test]
    fn each_setting_permits_its_classes_and_none_permits_metadata() {
        use AddressClass::*;
        let classes = [Public, Loopback, Private, LinkLocal, Metadata, Unspecified, Multicast, Reserved];
        let permitted =
            |allow: Allow| -> Vec<AddressClass> { classes.into_iter().filter(|class| allow.permits(*class)).collect() };
        assert_eq!(permitted(Allow::Public), vec![Public]);
        assert_eq!(permitted(Allow::Loopback), vec![Public, Loopback]);
        assert_eq!(
            permitted(Allow::Private),
            vec![Public, Loopback, Private, LinkLocal, Unspecified, Multicast, Reserved]
        );
    }

    #[test]
    fn allow_parses_the_three_settings_and_rejects_others() {
        assert_eq!("public".parse(), Ok(Allow::Public));
        assert_eq!("loopback".parse(), Ok(Allow::Loopback));
        assert_eq!("private".parse(), Ok(Allow::Private));
        assert_eq!("everything".parse::<Allow>(), Err(UnknownAllow("everything".to_owned())));
        assert_eq!(Allow::default(), Allow::Public);
    }

    #[test]
    fn check_url_refuses_other_schemes_and_credentials() {
        let scheme = check_url("ftp://example.com/file", Allow::Private).unwrap_err();
        assert_eq!(scheme, Refusal::Scheme("ftp".to_owned()));
        assert_eq!(scheme.code(), "scheme_not_allowed");

        let credentials = check_url("http://user:pw@example.com/", Allow::Private).unwrap_err();
        assert_eq!(credentials.code(), "bad_url");

        let unparsable = check_url("not a url", Allow::Private).unwrap_err();
        assert_eq!(unparsable.code(), "bad_url");
    }

    #[test]
    fn check_url_classifies_an_address_host() {
        let loopback_under_public = check_url("http://127.0.0.1/", Allow::Public).unwrap_err();
        assert_eq!(
            loopback_under_public,
            Refusal::Address {
                host: "127.0.0.1".to_owned(),
                address: IpAddr::V4(Ipv4Addr::LOCALHOST),
                class: AddressClass::Loopback,
            }
        );
        assert_eq!(loopback_under_public.code(), "address_not_allowed");

        let allowed = check_url("http://127.0.0.1/", Allow::Loopback).unwrap();
        assert_eq!(allowed.as_str(), "http://127.0.0.1/");

        let private_under_loopback = check_url("http://10.0.0.1/", Allow::Loopback).unwrap_err();
        assert_eq!(private_under_loopback.code(), "address_not_allowed");

        let metadata = check_url("http://169.254.169.254/latest/meta-data", Allow::Private);
        assert!(matches!(metadata, Err(Refusal::Address { class: AddressClass::Metadata, .. })));

        let ipv6_loopback = check_url("http://[::1]:8080/", Allow::Public).unwrap_err();
        assert!(matches!(ipv6_loopback, Refusal::Address { class: AddressClass::Loopback, .. }));
        assert!(check_url("http://[::1]:8080/", Allow::Loopback).is_ok());
    }

    #[test]
    fn check_url_sees_through_numeric_host_spellings() {
        for spelling in ["http://2130706433/", "http://0x7f.1/", "http://[::ffff:127.0.0.1]/"] {
            let refusal = check_url(spelling, Allow::Public).unwrap_err();
            assert!(
                matches!(refusal, Refusal::Address { class: AddressClass::Loopback, .. }),
                "{spelling}: {refusal:?}"
            );
        }
    }

    #[test]
    fn check_url_leaves_host_names_to_the_resolver() {
        let url = check_url("https://partner.example/postback?click=1", Allow::Public).unwrap();
        assert_eq!(url.host_str(), Some("partner.example"));
    }
}
