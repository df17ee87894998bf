//! Login JWTs end to end: the gateway trusts a real JWKS served on loopback,
//! and every attack token is refused over HTTP with 401 `unauthorized` and a
//! `WWW-Authenticate` header, with nothing fetched for URLs a token names.
//! Also the JWKS policy as a client sees it: unknown-kid floods, rotation,
//! outages, and configurable claim paths (Clerk v2 style).

mod common;
#[path = "common/jwks_server.rs"]
mod jwks_server;
#[path = "common/keys.rs"]
mod keys;

use std::time::Duration;

use common::TestGateway;
use jwks_server::Server;
use keys::{b64, b64_json, now, sign_raw, TestKey};
use serde_json::{json, Value};
use wa_gateway::auth::ClaimPaths;

const ISS: &str = "https://issuer.test";
const AUD: &str = "wa-gateway";

fn rsa() -> TestKey {
    TestKey::rsa_from_file(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rsa2048.pk8"))
}

fn claims() -> Value {
    json!({"sub": "u1", "iss": ISS, "aud": AUD, "exp": now() + 300, "iat": now(), "platform_role": "super_admin"})
}

fn hdr(alg: &str, kid: &str) -> Value {
    json!({"alg": alg, "typ": "JWT", "kid": kid})
}

struct Setup {
    gw: TestGateway,
    jwks: Server,
    rsa: TestKey,
    ec: TestKey,
    ed: TestKey,
}

async fn setup(f: impl FnOnce(&mut wa_gateway::config::ServeConfig)) -> Setup {
    let (rsa, ec, ed) = (rsa(), TestKey::p256(), TestKey::ed25519());
    let jwks = Server::start(keys::jwks(&[rsa.jwk_with_alg("rsa", None), rsa.jwk_with_alg("rsa-rs256", Some("RS256")), ec.jwk("ec"), ed.jwk("ed")])).await;
    let url = jwks.url.clone();
    let gw = TestGateway::start_with(|c| {
        c.jwks_url = Some(url);
        c.jwt_issuer = Some(ISS.into());
        c.jwt_audience = Some(AUD.into());
        c.jwks.refresh_every = Duration::from_millis(300);
        f(c);
    })
    .await;
    for _ in 0..200 {
        if gw.http.get("/readyz", None).await.status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Setup { gw, jwks, rsa, ec, ed }
}

async fn status(s: &Setup, token: &str) -> u16 {
    let r = s.gw.http.get("/api/v1/admin/sessions", Some(token)).await;
    if r.status == 401 {
        assert_eq!(r.code(), "unauthorized");
        assert!(r.headers.get("www-authenticate").is_some());
        assert!(!r.body.windows(20).any(|w| token.as_bytes().windows(20).next() == Some(w)), "token echoed");
    }
    r.status.as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn valid_tokens_of_each_family_are_accepted() {
    let s = setup(|_| {}).await;
    assert_eq!(s.gw.http.get("/readyz", None).await.status, 200);
    assert_eq!(s.gw.http.get("/.well-known/jwks.json", None).await.status, 404, "embedded issuer off");
    for (alg, key, kid) in [("RS256", &s.rsa, "rsa"), ("PS256", &s.rsa, "rsa"), ("RS512", &s.rsa, "rsa"), ("ES256", &s.ec, "ec"), ("EdDSA", &s.ed, "ed")] {
        let t = key.sign(alg, &hdr(alg, kid), &claims());
        assert_eq!(status(&s, &t).await, 200, "{alg}");
    }
    // aud as an array containing ours.
    let mut c = claims();
    c["aud"] = json!(["other", AUD]);
    assert_eq!(status(&s, &s.ec.sign("ES256", &hdr("ES256", "ec"), &c)).await, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn attack_tokens_are_refused_with_401_and_nothing_is_fetched() {
    let s = setup(|_| {}).await;
    let bait = Server::start(keys::jwks(&[s.ec.jwk("evil")])).await;
    let c = claims();
    let ec = |h: Value, c: &Value| s.ec.sign("ES256", &h, c);
    let valid = ec(hdr("ES256", "ec"), &c);
    let (input, sig) = valid.rsplit_once('.').expect("3 parts");
    let (h64, c64) = input.split_once('.').expect("2 parts");
    let rsa_jwk_bytes = s.rsa.jwk("rsa").to_string();
    let hs = keys::hs256(rsa_jwk_bytes.as_bytes(), format!("{}.{}", b64_json(&hdr("HS256", "rsa")), b64_json(&c)).as_bytes());

    let mut attacks: Vec<(&str, String)> = vec![
        ("alg none", format!("{}.{}.", b64_json(&json!({"alg": "none", "typ": "JWT"})), b64_json(&c))),
        ("alg None", format!("{}.{}.", b64_json(&json!({"alg": "None", "kid": "ec"})), b64_json(&c))),
        ("alg NONE", format!("{}.{}.", b64_json(&json!({"alg": "NONE", "kid": "ec"})), b64_json(&c))),
        ("empty signature", format!("{input}.")),
        ("HS256 with the RSA public key", sign_raw(&b64_json(&hdr("HS256", "rsa")), &b64_json(&c), &hs)),
        ("header alg != JWK alg", s.rsa.sign("PS256", &hdr("PS256", "rsa-rs256"), &c)),
        ("ES384 header on a P-256 key", {
            let h = b64_json(&hdr("ES384", "ec"));
            let sig = s.ec.signature("ES256", format!("{h}.{c64}").as_bytes());
            sign_raw(&h, c64, &sig)
        }),
        ("key of another family", s.rsa.sign("RS256", &hdr("RS256", "ec"), &c)),
        ("ES256 all-zero signature", sign_raw(h64, c64, &[0u8; 64])),
        ("ES256 DER signature", sign_raw(h64, c64, &s.ec.der_signature(input.as_bytes()))),
        ("padded base64", format!("{h64}=.{c64}.{sig}")),
        ("non-url base64", format!("{}.{c64}.{sig}", b64_json(&hdr("ES256", "ec")).replace('-', "+").replace('_', "/") + "+/")),
        ("5 segments", format!("{valid}.{h64}.{c64}")),
        ("2 segments", input.to_string()),
        ("8 KiB+ token", ec(hdr("ES256", "ec"), &json!({"sub": "u1", "iss": ISS, "aud": AUD, "exp": now() + 300, "pad": "x".repeat(9000)}))),
        ("duplicate members", s.ec.sign_bytes("ES256", br#"{"alg":"ES256","kid":"ec","kid":"ec"}"#, c.to_string().as_bytes())),
        ("duplicate claims", s.ec.sign_bytes("ES256", hdr("ES256", "ec").to_string().as_bytes(),
            format!(r#"{{"sub":"u1","iss":"{ISS}","aud":"{AUD}","exp":{},"platform_role":"member","platform_role":"super_admin"}}"#, now() + 300).as_bytes())),
        ("typ not JWT", ec(json!({"alg": "ES256", "kid": "ec", "typ": "JWE"}), &c)),
    ];
    let mut claim = |name: &'static str, f: &dyn Fn(&mut Value)| {
        let mut c = claims();
        f(&mut c);
        attacks.push((name, s.ec.sign("ES256", &hdr("ES256", "ec"), &c)));
    };
    claim("expired", &|c| c["exp"] = json!(now() - 120));
    claim("not yet valid", &|c| c["nbf"] = json!(now() + 120));
    claim("wrong iss", &|c| c["iss"] = json!("https://evil.test"));
    claim("wrong aud", &|c| c["aud"] = json!("other"));
    claim("aud []", &|c| c["aud"] = json!([]));
    claim("exp as a string", &|c| c["exp"] = json!((now() + 300).to_string()));
    claim("no exp", &|c| {
        c.as_object_mut().map(|o| o.remove("exp"));
    });
    for (name, url_header) in [("jku", "jku"), ("x5u", "x5u")] {
        let h = json!({"alg": "ES256", "kid": "evil", url_header: bait.url});
        attacks.push((name, s.ec.sign("ES256", &h, &c)));
    }
    attacks.push(("jwk header", ec(json!({"alg": "ES256", "kid": "ec", "jwk": s.ec.jwk("ec")}), &c)));
    attacks.push(("x5c header", ec(json!({"alg": "ES256", "kid": "ec", "x5c": [b64(b"cert")]}), &c)));
    attacks.push(("crit header", ec(json!({"alg": "ES256", "kid": "ec", "crit": ["exp"]}), &c)));

    let before = s.jwks.hits();
    for (name, token) in &attacks {
        assert_eq!(status(&s, token).await, 401, "{name} must be refused");
    }
    assert_eq!(bait.hits(), 0, "no URL named in a token is ever fetched");
    assert_eq!(s.jwks.hits(), before, "no attack made the gateway refetch its JWKS");
    // And the genuine token still works.
    assert_eq!(status(&s, &valid).await, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_kid_flood_fetches_at_most_once_per_cooldown() {
    let s = setup(|c| c.jwks.refresh_every = Duration::from_secs(600)).await;
    let start = s.jwks.hits();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let t = s.ec.sign("ES256", &hdr("ES256", &format!("unknown-{i}")), &claims());
        let http = s.gw.http.clone();
        tasks.push(tokio::spawn(async move { http.get("/api/v1/admin/sessions", Some(&t)).await.status }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), 401);
    }
    assert!(s.jwks.hits() - start <= 1, "{} fetches for 50 unknown kids", s.jwks.hits() - start);
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_removes_keys_and_outages_keep_known_keys() {
    let s = setup(|_| {}).await;
    let ec_token = s.ec.sign("ES256", &hdr("ES256", "ec"), &claims());
    let ed_token = s.ed.sign("EdDSA", &hdr("EdDSA", "ed"), &claims());
    assert_eq!(status(&s, &ec_token).await, 200);
    assert_eq!(status(&s, &ed_token).await, 200);

    // The frontend rotates the EC key out: after the next refresh it stops working
    // (even though the verified-token cache had it).
    s.jwks.set_body(keys::jwks(&[s.rsa.jwk_with_alg("rsa", None), s.ed.jwk("ed")]));
    let mut refused = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if status(&s, &ec_token).await == 401 {
            refused = true;
            break;
        }
    }
    assert!(refused, "a key removed from the JWKS stops working after refresh");
    assert_eq!(status(&s, &ed_token).await, 200);

    // The JWKS endpoint goes down: known keys keep working across failed refreshes.
    s.jwks.stop();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(status(&s, &ed_token).await, 200);
    assert_eq!(s.gw.http.get("/readyz", None).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn clerk_v2_claim_paths() {
    let s = setup(|c| {
        c.claims = ClaimPaths { org: "o.id".into(), role: "o.rol".into(), platform_role: "platform_role".into() }
    })
    .await;
    let c = json!({"sub": "user_2x", "iss": ISS, "aud": AUD, "exp": now() + 300, "o": {"id": "org_2abc", "rol": "org:admin"}});
    let t = s.ec.sign("ES256", &hdr("ES256", "ec"), &c);
    let r = s.gw.http.post("/api/v1/sessions", Some(&t), json!({"label": "clerk"})).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    assert_eq!(r.json["organizationId"], "org_2abc");
    assert_eq!(r.json["createdByUserId"], "user_2x");
    let me = s.gw.http.get("/api/v1/me", Some(&t)).await;
    assert_eq!(me.json["role"], "admin");
    // An array platform role works too.
    let c = json!({"sub": "root", "iss": ISS, "aud": AUD, "exp": now() + 300, "platform_role": ["support", "super_admin"]});
    assert_eq!(status(&s, &s.ec.sign("ES256", &hdr("ES256", "ec"), &c)).await, 200);
}
