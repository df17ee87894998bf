//! The command line (CONTRACT §7) through the real binary: `serve` defaults
//! and environment variables, `token`, `check`, `--jwt-audience`, `--gateway-id`.
//!
//! Every child process is owned by a [`Server`] whose `Drop` kills it.

#[path = "common/process.rs"]
mod process;

use std::path::Path;
use std::time::Duration;

use process::*;
use serde_json::{json, Value};


// ---------------------------------------------------------------- helpers of this file

/// Decodes one base64url (no padding) JWT segment as JSON.
fn segment(token: &str, i: usize) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(i).expect("segment");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url without padding");
    serde_json::from_slice(&bytes).expect("segment is JSON")
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// The log without terminal colour codes.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... final byte in @..~
            if chars.next() == Some('[') {
                for d in chars.by_ref() {
                    if ('@'..='~').contains(&d) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

// ---------------------------------------------------------------- tests

/// `serve` with no flags: `./data` in the working directory, the listen address
/// from `WAG_LISTEN`, health endpoints, the embedded issuer's JWKS, a startup
/// log naming what it runs with; and `token` signs with the key that JWKS serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_without_flags_creates_data_in_cwd_and_serves_jwks() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let dir = cwd.path().to_path_buf();
    let mut server = Server::start_with(|c, addr| {
        c.current_dir(&dir).env("WAG_LISTEN", addr);
    });
    let data = cwd.path().join("data");
    assert!(
        data.join("gateway.redb").is_file(),
        "no ./data/gateway.redb"
    );
    assert!(data.join("issuer.pk8").is_file(), "no ./data/issuer.pk8");
    assert_eq!(
        mode(&data.join("issuer.pk8")),
        0o600,
        "issuer.pk8 must be 0600"
    );

    let api = server.api();
    let (st, body) = api.get("/healthz", None).await;
    assert_eq!((st, &body["status"]), (200, &json!("ok")), "{body}");
    let (st, body) = api.get("/readyz", None).await;
    assert_eq!(st, 200, "{body}");
    let (st, jwks) = api.get("/.well-known/jwks.json", None).await;
    assert_eq!(st, 200, "{jwks}");
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1, "{jwks}");
    let key = &keys[0];
    assert_eq!(key["kty"], json!("OKP"), "{jwks}");
    assert_eq!(key["crv"], json!("Ed25519"), "{jwks}");
    assert!(
        key.get("d").is_none(),
        "the JWKS leaks the private key: {jwks}"
    );
    let kid = key["kid"].as_str().expect("kid").to_string();
    let x = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(key["x"].as_str().expect("x"))
            .expect("x b64url")
    };
    assert_eq!(x.len(), 32, "Ed25519 public key length");

    let log = strip_ansi(&server.log());
    for want in [
        server.addr.as_str(),
        "gateway.redb",
        "embedded",
        "gw-local-1",
    ] {
        assert!(
            log.contains(want),
            "startup log does not mention {want:?}:\n{log}"
        );
    }

    // `token` with the default --data (./data) signs with the served key.
    let out = run_in(Some(cwd.path()), &[], &["token", "--sub", "u1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_string();
    assert_eq!(
        segment(&token, 0)["kid"],
        json!(kid),
        "token kid is not the JWKS kid"
    );
    let (signing_input, sig) = token.rsplit_once('.').expect("jws");
    let sig = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sig)
            .expect("sig b64url")
    };
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &x)
        .verify(signing_input.as_bytes(), &sig)
        .expect("token signature does not verify with the JWKS key");

    server.stop(Duration::from_secs(10));
    assert!(
        strip_ansi(&server.log()).contains("closed cleanly"),
        "{}",
        server.log()
    );
    // Last, so it does not hide the checks above: the data file will hold
    // WhatsApp credentials; it should be as private as the issuer key.
    assert_eq!(
        mode(&data.join("gateway.redb")),
        0o600,
        "gateway.redb should be 0600 like issuer.pk8"
    );
}

/// `token` output: a compact EdDSA JWS whose claims follow the flags.
#[test]
fn token_prints_jwt_with_requested_claims() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();

    let t = mint(data, &["--sub", "u1"]);
    let header = segment(&t, 0);
    assert_eq!(header["alg"], json!("EdDSA"), "{header}");
    assert_eq!(header["typ"], json!("JWT"), "{header}");
    let kid = header["kid"].as_str().expect("kid").to_string();
    let c = segment(&t, 1);
    assert_eq!(c["sub"], json!("u1"), "{c}");
    assert_eq!(c["iss"], json!("wa-gateway"), "{c}");
    let iat = c["iat"].as_i64().expect("iat is a number");
    assert!((iat - now_secs()).abs() <= 5, "iat is not now: {c}");
    assert_eq!(
        c["exp"].as_i64().expect("exp") - iat,
        3600,
        "default ttl is 1h: {c}"
    );
    for absent in ["org_id", "org_role", "platform_role", "aud"] {
        assert!(
            c.get(absent).is_none(),
            "{absent} set without its flag: {c}"
        );
    }
    assert_eq!(mode(&data.join("issuer.pk8")), 0o600);

    let c = segment(
        &mint(data, &["--sub", "u2", "--org", "o", "--role", "member"]),
        1,
    );
    assert_eq!(
        (&c["org_id"], &c["org_role"]),
        (&json!("o"), &json!("member")),
        "{c}"
    );
    assert!(c.get("platform_role").is_none(), "{c}");

    let t = mint(data, &["--sub", "root", "--super-admin"]);
    assert_eq!(
        segment(&t, 0)["kid"],
        json!(kid),
        "a second token used another key"
    );
    assert_eq!(segment(&t, 1)["platform_role"], json!("super_admin"));

    for (ttl, secs) in [("1s", 1), ("0s", 0), ("15m", 900), ("7d", 7 * 86400)] {
        let c = segment(&mint(data, &["--sub", "u1", "--ttl", ttl]), 1);
        assert_eq!(
            c["exp"].as_i64().expect("exp") - c["iat"].as_i64().expect("iat"),
            secs,
            "--ttl {ttl}: {c}"
        );
    }

    let c = segment(
        &mint(
            data,
            &[
                "--sub",
                "u1",
                "--jwt-audience",
                "aud1",
                "--jwt-issuer",
                "me",
            ],
        ),
        1,
    );
    assert_eq!(
        (&c["aud"], &c["iss"]),
        (&json!("aud1"), &json!("me")),
        "{c}"
    );
    let c = segment(
        &mint(
            data,
            &[
                "--sub",
                "u1",
                "--org",
                "o9",
                "--role",
                "admin",
                "--claim-org",
                "o.id",
                "--claim-role",
                "o.rol",
            ],
        ),
        1,
    );
    assert_eq!(
        c["o"],
        json!({"id": "o9", "rol": "admin"}),
        "nested claim paths: {c}"
    );

    let d = s(data);
    for bad in [
        vec!["token", "--data", d, "--sub", "u1", "--role", "boss"],
        vec!["token", "--data", d],
        vec!["token", "--data", d, "--sub", "u1", "--ttl", "soon"],
    ] {
        let out = run(&bad);
        assert!(
            !out.status.success(),
            "{bad:?} succeeded: {}",
            text(&out.stdout)
        );
        assert!(
            out.stdout.is_empty(),
            "{bad:?} printed a token: {}",
            text(&out.stdout)
        );
        assert!(!out.stderr.is_empty(), "{bad:?} failed silently");
    }
}

/// The server honours what `token` puts in: super_admin opens the admin API,
/// roles map to permissions, and a token from another key is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_roles_are_enforced_by_the_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let server = Server::start(data, &[]);
    let api = server.api();
    let root = super_token(data);
    let owner = owner_token(data);
    let member = mint(data, &["--sub", "m1", "--org", "org_a", "--role", "member"]);

    let (st, body) = api.get("/api/v1/admin/sessions", Some(&root)).await;
    assert_eq!(st, 200, "super_admin on the admin API: {body}");
    assert!(body["data"].is_array(), "{body}");
    let (st, body) = api.get("/api/v1/admin/sessions", Some(&owner)).await;
    assert_eq!(
        (st, &body["error"]["code"]),
        (403, &json!("forbidden")),
        "owner on the admin API: {body}"
    );

    let (st, body) = api
        .post(
            "/api/v1/sessions",
            Some(&owner),
            json!({"label": "by-owner"}),
        )
        .await;
    assert_eq!(st, 201, "owner creates: {body}");
    let (st, body) = api
        .post(
            "/api/v1/sessions",
            Some(&member),
            json!({"label": "by-member"}),
        )
        .await;
    assert_eq!(
        (st, &body["error"]["code"]),
        (403, &json!("forbidden")),
        "member lacks sessions:write: {body}"
    );
    let (st, body) = api.get("/api/v1/sessions", Some(&member)).await;
    assert_eq!(st, 200, "member has sessions:read: {body}");
    assert_eq!(body["data"].as_array().map(Vec::len), Some(1), "{body}");

    let (st, _) = api.get("/api/v1/sessions", None).await;
    assert_eq!(st, 401, "no token");
    // Signed by another data directory's key: must not verify.
    let other = tempfile::tempdir().expect("tempdir");
    let forged = mint(other.path(), &["--sub", "root", "--super-admin"]);
    let (st, body) = api.get("/api/v1/admin/sessions", Some(&forged)).await;
    assert_eq!(st, 401, "token from a foreign key accepted: {body}");
    // `--ttl 0s` (exp == iat == now) is still inside the 60 s leeway.
    let zero = mint(data, &["--sub", "root", "--super-admin", "--ttl", "0s"]);
    let (st, body) = api.get("/api/v1/admin/sessions", Some(&zero)).await;
    assert_eq!(st, 200, "exp == now is within the leeway: {body}");
}

/// Every flag of every subcommand in CONTRACT §7 has its `WAG_<FLAG>` variable.
#[test]
fn every_flag_has_a_wag_environment_variable() {
    let flags: &[(&str, &[&str])] = &[
        (
            "serve",
            &[
                "listen",
                "data",
                "gateway-id",
                "jwks-url",
                "jwt-issuer",
                "jwt-audience",
                "claim-org",
                "claim-role",
                "claim-platform-role",
                "log-format",
                "engine",
                "reconnect-attempts",
                "reconnect-max-delay",
            ],
        ),
        (
            "token",
            &["data", "sub", "org", "role", "super-admin", "ttl"],
        ),
        ("backup", &["data", "out"]),
        ("check", &["data", "repair"]),
    ];
    for (cmd, names) in flags {
        let out = run(&[cmd, "--help"]);
        assert!(out.status.success(), "{cmd} --help");
        let help = text(&out.stdout);
        for name in *names {
            let env = format!("WAG_{}", name.to_uppercase().replace('-', "_"));
            // The flag's line and its description lines, up to the next flag.
            let lines: Vec<&str> = help.lines().collect();
            let start = lines
                .iter()
                .position(|l| {
                    let t = l.trim_start();
                    t == format!("--{name}") || t.starts_with(&format!("--{name} "))
                })
                .unwrap_or_else(|| panic!("{cmd} has no --{name}:\n{help}"));
            let end = lines[start + 1..]
                .iter()
                .position(|l| {
                    // The next flag (`--x` or `-x, --x`), not a "- value: ..." line.
                    let t = l.trim_start();
                    t.starts_with("--") || t.as_bytes().get(1).is_some_and(u8::is_ascii_alphabetic) && t.starts_with('-')
                })
                .map_or(lines.len(), |i| start + 1 + i);
            let block = lines[start..end].join("\n");
            assert!(
                block.contains(&format!("[env: {env}")),
                "{cmd} --{name} is not read from {env}:\n{block}"
            );
        }
    }
}

/// `serve` configured only through the environment: WAG_DATA, WAG_LISTEN,
/// WAG_GATEWAY_ID, WAG_LOG_FORMAT=json (and `token` through WAG_* too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reads_its_configuration_from_wag_variables() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let store = tempfile::tempdir().expect("tempdir");
    let data = store.path().join("env-data");
    let (cwd_path, data_s) = (cwd.path().to_path_buf(), s(&data).to_string());
    let mut server = Server::start_with(|c, addr| {
        c.current_dir(&cwd_path)
            .env("WAG_LISTEN", addr)
            .env("WAG_DATA", &data_s)
            .env("WAG_GATEWAY_ID", "gw-env-7")
            .env("WAG_LOG_FORMAT", "json");
    });
    assert!(data.join("gateway.redb").is_file(), "WAG_DATA ignored");
    assert!(
        !cwd.path().join("data").exists(),
        "./data created although WAG_DATA was set"
    );

    let json_lines = |log: &str| -> Vec<Value> {
        log.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"))
            })
            .collect()
    };
    let lines = json_lines(&server.log());
    assert!(
        lines
            .iter()
            .any(|l| l["gateway_id"] == json!("gw-env-7") && l["address"] == json!(server.addr)),
        "no JSON startup line with gateway_id and address:\n{}",
        server.log()
    );

    let envs = [
        ("WAG_DATA", data_s.as_str()),
        ("WAG_SUB", "u-env"),
        ("WAG_ORG", "org_env"),
        ("WAG_ROLE", "owner"),
    ];
    let out = run_in(None, &envs, &["token"]);
    assert!(
        out.status.success(),
        "token from WAG_* variables: {}",
        text(&out.stderr)
    );
    let token = text(&out.stdout).trim().to_string();
    let (st, body) = server
        .api()
        .post("/api/v1/sessions", Some(&token), json!({"label": "env"}))
        .await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(body["gatewayId"], json!("gw-env-7"), "{body}");
    assert_eq!(body["organizationId"], json!("org_env"), "{body}");
    assert_eq!(body["createdByUserId"], json!("u-env"), "{body}");

    server.stop(Duration::from_secs(10));
    let lines = json_lines(&server.log());
    assert!(
        lines
            .iter()
            .any(|l| l["status"] == json!(201) && l["path"] == json!("/api/v1/sessions")),
        "no JSON access-log line for the create:\n{}",
        server.log()
    );
}

/// `check` refuses what is not a gateway data file, with exit 1 and a message.
#[test]
fn check_fails_on_missing_or_foreign_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let garbage = dir.path().join("garbage.redb");
    std::fs::write(&garbage, "this is not a redb file\n".repeat(200)).expect("write");
    let empty = dir.path().join("empty.redb");
    std::fs::write(&empty, "").expect("write");
    let missing = dir.path().join("missing.redb");
    let empty_dir = dir.path().join("no-data-here");
    std::fs::create_dir(&empty_dir).expect("mkdir");

    for args in [
        vec![s(&garbage)],
        vec![s(&empty)],
        vec![s(&missing)],
        vec![s(&empty_dir)],
        vec!["--data", s(&empty_dir)],
        vec!["--data", s(&missing)],
    ] {
        let (code, out, err) = check(&args);
        assert_eq!(code, Some(1), "check {args:?} exit code:\n{out}\n{err}");
        assert!(
            !err.trim().is_empty(),
            "check {args:?} failed without a message"
        );
        assert!(!err.contains("panicked"), "check {args:?} panicked:\n{err}");
        assert!(!out.contains("ok"), "check {args:?} printed ok:\n{out}");
    }
    assert!(!missing.exists(), "check created the missing file");
    assert!(
        !empty_dir.join("gateway.redb").exists(),
        "check created a data file"
    );
    assert_eq!(
        std::fs::read(&empty).expect("read").len(),
        0,
        "check wrote into the empty file"
    );
}

/// `check` on a good file: exit 0 and the counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_counts_of_a_good_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let mut server = Server::start(data, &[]);
    let api = server.api();
    let a = owner_token(data);
    let b = mint(data, &["--sub", "u2", "--org", "org_b", "--role", "admin"]);
    for (t, label) in [(&a, "a1"), (&a, "a2"), (&a, "a3"), (&b, "b1")] {
        let (st, body) = api
            .post("/api/v1/sessions", Some(t), json!({"label": label}))
            .await;
        assert_eq!(st, 201, "{body}");
    }
    server.stop(Duration::from_secs(10));

    for args in [
        vec!["--data", s(data)],
        vec![s(data)],
        vec![s(&data_file(data))],
    ] {
        let (code, out, err) = check(&args);
        assert_eq!(code, Some(0), "check {args:?}:\n{out}\n{err}");
        let lines: Vec<&str> = out.lines().map(str::trim).collect();
        assert!(
            lines.iter().any(|l| l.ends_with("sessions: 4")),
            "check {args:?}:\n{out}"
        );
        assert!(
            lines.contains(&"organizations: 2"),
            "check {args:?}:\n{out}"
        );
        assert!(lines.contains(&"api_keys: 0"), "check {args:?}:\n{out}");
        assert_eq!(lines.last(), Some(&"ok"), "check {args:?}:\n{out}");
    }
}

/// `--jwt-audience` is enforced (and `token --jwt-audience` satisfies it);
/// `--gateway-id` names created sessions and wins over WAG_GATEWAY_ID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_audience_and_gateway_id_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_path_buf();
    let server = Server::start_with(|c, addr| {
        c.env("WAG_GATEWAY_ID", "gw-from-env")
            .arg("--data")
            .arg(&data)
            .arg("--listen")
            .arg(addr)
            .args(["--jwt-audience", "aud1", "--gateway-id", "gw-flag-9"]);
    });
    let api = server.api();
    let base = ["--sub", "u1", "--org", "org_a", "--role", "owner"];
    let no_aud = mint(&data, &base);
    let aud2 = mint(&data, &[&base[..], &["--jwt-audience", "aud2"]].concat());
    let aud1 = mint(&data, &[&base[..], &["--jwt-audience", "aud1"]].concat());

    let (st, body) = api.get("/api/v1/sessions", Some(&no_aud)).await;
    assert_eq!(
        (st, &body["error"]["code"]),
        (401, &json!("unauthorized")),
        "token without aud: {body}"
    );
    let (st, body) = api.get("/api/v1/sessions", Some(&aud2)).await;
    assert_eq!(st, 401, "token with the wrong aud: {body}");
    let (st, body) = api.get("/api/v1/sessions", Some(&aud1)).await;
    assert_eq!(st, 200, "token with aud1: {body}");
    let (st, body) = api
        .post("/api/v1/sessions", Some(&aud1), json!({"label": "gw"}))
        .await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(
        body["gatewayId"],
        json!("gw-flag-9"),
        "the flag must win over WAG_GATEWAY_ID: {body}"
    );
}

/// The default engine through the real binary, on a machine with no route
/// to WhatsApp: an owner's create starts the session, it retries as often as
/// `--reconnect-attempts` says and ends `failed` with a clear `lastError`;
/// stop works after that, and SIGTERM exits cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_whatsapp_engine_without_a_route_ends_failed_with_last_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_path_buf();
    let mut server = Server::start_with(|c, addr| {
        c.arg("--data").arg(&data).arg("--listen").arg(addr);
        c.env("WAG_RECONNECT_ATTEMPTS", "2").args(["--reconnect-max-delay", "1s"]);
    });
    let api = server.api();
    let owner = owner_token(&data);
    let (st, created) = api.post("/api/v1/sessions", Some(&owner), json!({"label": "real"})).await;
    assert_eq!(st, 201, "{created}");
    assert_eq!(created["status"], "starting", "an owner's create starts the session");
    let id = created["id"].as_str().expect("id").to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(45);
    let failed = loop {
        let (_, s) = api.get(&format!("/api/v1/sessions/{id}"), Some(&owner)).await;
        if s["status"] == "failed" || std::time::Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(failed["status"], "failed", "{failed}");
    let err = failed["lastError"].as_str().unwrap_or_default();
    assert!(err.starts_with("connect: "), "a clear lastError: {failed}");
    let log = server.log();
    assert_eq!(log.matches("reconnecting").count(), 1, "two attempts, one backoff:\n{log}");
    assert!(log.contains("retries exhausted"), "{log}");
    let (st, stopped) = api.post(&format!("/api/v1/sessions/{id}/stop"), Some(&owner), json!({})).await;
    assert_eq!((st, &stopped["status"]), (200, &json!("stopped")), "{stopped}");
    server.stop(Duration::from_secs(10));
}

/// `console` prints a link to the web console with a short-lived embedded
/// issuer token in the fragment; with `--jwks-url` it prints no token.
#[test]
fn console_prints_a_signed_in_link() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8");
    let out = run(&["console", "--data", d, "--org", "acme"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let link = text(&out.stdout).trim().to_string();
    let token = link
        .strip_prefix("http://127.0.0.1:8080/console#token=")
        .unwrap_or_else(|| panic!("not a console link: {link}"));
    let c = segment(token, 1);
    assert_eq!((&c["sub"], &c["org_id"], &c["org_role"]), (&json!("console"), &json!("acme"), &json!("owner")), "{c}");
    assert_eq!(c["exp"].as_i64().expect("exp") - c["iat"].as_i64().expect("iat"), 3600, "{c}");
    assert!(c.get("platform_role").is_none(), "{c}");
    // The same key as `token` (the data directory's issuer).
    assert_eq!(segment(token, 0)["kid"], segment(&mint(dir.path(), &["--sub", "u"]), 0)["kid"]);

    let out = run_in(None, &[("WAG_LISTEN", "0.0.0.0:9999")], &["console", "--data", d, "--super-admin", "--ttl", "15m"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let link = text(&out.stdout).trim().to_string();
    let token = link.strip_prefix("http://127.0.0.1:9999/console#token=").unwrap_or_else(|| panic!("{link}"));
    let c = segment(token, 1);
    assert_eq!(c["platform_role"], json!("super_admin"), "{c}");
    assert!(c.get("org_id").is_none() && c.get("org_role").is_none(), "{c}");
    assert_eq!(c["exp"].as_i64().expect("exp") - c["iat"].as_i64().expect("iat"), 900, "{c}");

    let out = run(&["console", "--data", d, "--org", "acme", "--role", "member", "--listen", "127.0.0.1:7000"]);
    let link = text(&out.stdout).trim().to_string();
    let token = link.strip_prefix("http://127.0.0.1:7000/console#token=").unwrap_or_else(|| panic!("{link}"));
    assert_eq!(segment(token, 1)["org_role"], json!("member"));

    // A frontend issues the tokens: no token is printed.
    let out = run(&["console", "--data", d, "--org", "acme", "--jwks-url", "https://auth.example.com/jwks.json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "http://127.0.0.1:8080/console");
    assert!(text(&out.stderr).contains("frontend"), "{}", text(&out.stderr));

    // Nobody to sign in as.
    let out = run(&["console", "--data", d]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(text(&out.stdout).is_empty());
}
