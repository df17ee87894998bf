//! Tests of [`super`]: the WHATWG host spellings, one table.

use super::*;

fn v4(s: &str) -> Host {
    Host::V4(s.parse().unwrap())
}

fn v6(s: &str) -> Host {
    Host::V6(s.parse().unwrap())
}

#[test]
fn ipv4_spellings_are_one_address() {
    for (raw, want) in [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("0X7F.0.0.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("127.1.", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("0x", "0.0.0.0"),
        ("0x.0x.0x.0x", "0.0.0.0"),
        ("10.0.258", "10.0.1.2"),
        ("169.254.43518", "169.254.169.254"),
        ("0xa9fea9fe", "169.254.169.254"),
        ("192.168.0x1.01", "192.168.1.1"),
        ("%31%32%37.0.0.1", "127.0.0.1"),
        ("4294967295", "255.255.255.255"),
        ("8.8.8.8", "8.8.8.8"),
    ] {
        assert_eq!(normalize(raw), Ok(v4(want)), "{raw}");
    }
}

#[test]
fn ipv6_literals_are_parsed() {
    for (raw, want) in [
        ("[::1]", "::1"),
        ("[0:0:0:0:0:0:0:1]", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1"),
        ("[::FFFF:7F00:1]", "::ffff:127.0.0.1"),
        ("[2606:4700::1111]", "2606:4700::1111"),
    ] {
        assert_eq!(normalize(raw), Ok(v6(want)), "{raw}");
    }
    assert_eq!(v6("::1").authority_form(), "[::1]");
}

#[test]
fn names_lose_case_and_the_trailing_dot() {
    for (raw, want) in [
        ("localhost", "localhost"),
        ("localhost.", "localhost"),
        ("LOCALHOST", "localhost"),
        ("Example.COM.", "example.com"),
        ("a.b.localhost", "a.b.localhost"),
        ("1.2.3.example", "1.2.3.example"),
        ("0xg", "0xg"),
    ] {
        assert_eq!(normalize(raw), Ok(Host::Name(want.into())), "{raw}");
    }
    assert!(normalize("localhost.").unwrap().is_localhost());
    assert!(normalize("x.LOCALHOST").unwrap().is_localhost());
    assert!(!normalize("localhost.example").unwrap().is_localhost());
}

#[test]
fn hosts_that_are_no_host_are_refused() {
    for raw in [
        "",
        ".",
        "a..b",
        "4294967296",      // past 2^32
        "256.0.0.1",       // a leading part over 255
        "1.2.3.4.5",       // five parts
        "127.0.0.0x100",   // the last part too big for one byte
        "1.2.3.09",        // octal with a 9: ends in a number, not an address
        "0x7g.0.0.1",      // ends in a number, so an address, and not one
        "[::1",
        "[fe80::1%25eth0]",
        "[1.2.3.4]",
        "bad%zz",
        "a b",
        "exa\u{e9}mple.com",
        "%00",
    ] {
        let got = normalize(raw);
        assert!(got.is_err(), "{raw}: {got:?}");
    }
}

#[test]
fn display_is_canonical() {
    assert_eq!(normalize("0x7f.1").unwrap().to_string(), "127.0.0.1");
    assert_eq!(normalize("[0:0:0:0:0:0:0:1]").unwrap().to_string(), "::1");
    assert_eq!(normalize("0x7f.1").unwrap().ip(), Some("127.0.0.1".parse().unwrap()));
    assert_eq!(normalize("example.com").unwrap().ip(), None);
}

/// One part of an IPv4 spelling in the radix `r` (0 decimal, 1 octal, 2 hex).
fn spell(n: u32, r: u8) -> String {
    match r {
        0 => n.to_string(),
        1 => format!("0{n:o}"),
        _ => format!("0x{n:x}"),
    }
}

proptest::proptest! {
    /// Every WHATWG spelling of an address (one to four parts, each in any
    /// radix, with or without a trailing dot) normalizes to that address.
    #[test]
    fn every_spelling_of_an_address_is_that_address(n: u32, radix: [u8; 4], parts in 1usize..=4, dot: bool) {
        let [a, b, c, d] = n.to_be_bytes().map(u32::from);
        let split: Vec<u32> = match parts {
            1 => vec![n],
            2 => vec![a, n & 0xff_ffff],
            3 => vec![a, b, (c << 8) | d],
            _ => vec![a, b, c, d],
        };
        let mut text = split.iter().zip(radix).map(|(p, r)| spell(*p, r % 3)).collect::<Vec<_>>().join(".");
        if dot {
            text.push('.');
        }
        proptest::prop_assert_eq!(normalize(&text), Ok(Host::V4(Ipv4Addr::from(n))), "{}", text);
    }

    /// Any text at all: a host or a reason, never a panic.
    #[test]
    fn any_text_is_a_host_or_a_reason(s in "\\PC{0,40}") {
        let _ = normalize(&s);
    }
}
