//! Which addresses an outbound request of the gateway may reach: media URLs
//! now, webhook URLs later (checked again at every delivery). Private,
//! loopback, link-local and other special-purpose addresses are refused
//! unless `--allow-private-urls`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether an address is a public unicast one (not private 10/8,172.16/12,
/// 192.168/16, loopback, link-local 169.254/16 & fe80::/10, unique-local
/// fc00::/7, CGNAT 100.64/10, unspecified, broadcast, multicast, documentation
/// ranges, IPv4-mapped IPv6 of any of these, 0.0.0.0/8, etc.).
///
/// For IPv6 only global unicast 2000::/3 is public (minus its special-purpose
/// blocks); IPv4-mapped, NAT64 (64:ff9b::/96) and 6to4 (2002::/16) addresses
/// are judged by the IPv4 address they embed.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let special = a == 0 // "this network", 0.0.0.0/8
        || a == 10 // private
        || (a == 100 && (b & 0xc0) == 64) // CGNAT 100.64/10
        || a == 127 // loopback
        || (a == 169 && b == 254) // link-local
        || (a == 172 && (b & 0xf0) == 16) // private 172.16/12
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // TEST-NET-1
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 192 && b == 168) // private
        || (a == 198 && (b & 0xfe) == 18) // benchmarking 198.18/15
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224; // multicast 224/4, reserved 240/4, broadcast
    !special
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    // NAT64 well-known prefix 64:ff9b::/96.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return is_public_v4(embedded_v4(s[6], s[7]));
    }
    // Only global unicast 2000::/3 is routable (this excludes ::, ::1, ::/96,
    // fc00::/7, fe80::/10, fec0::/10, ff00::/8, 100::/64, 64:ff9b:1::/48, …).
    if s[0] & 0xe000 != 0x2000 {
        return false;
    }
    // 2001::/23 IETF protocol assignments (Teredo, benchmarking, ORCHID, …).
    if s[0] == 0x2001 && s[1] < 0x0200 {
        return false;
    }
    // 2001:db8::/32 documentation.
    if s[0] == 0x2001 && s[1] == 0x0db8 {
        return false;
    }
    // 3fff::/20 documentation.
    if s[0] == 0x3fff && s[1] & 0xf000 == 0 {
        return false;
    }
    // 6to4 2002::/16: judged by the embedded IPv4 address.
    if s[0] == 0x2002 {
        return is_public_v4(embedded_v4(s[1], s[2]));
    }
    true
}

fn embedded_v4(hi: u16, lo: u16) -> Ipv4Addr {
    let [a, b] = hi.to_be_bytes();
    let [c, d] = lo.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}
