//! The web console (`/console`, `/docs`) in a real headless browser:
//! Debian's chromium driven over WebDriver (`/usr/bin/chromedriver`).
//!
//! Without chromedriver/chromium these tests FAIL (CI installs them, see
//! `.ci/run`). Browser tests take a lock so only one chromium runs at a time.

mod common;
#[path = "support/webdriver.rs"]
mod webdriver;

use std::path::PathBuf;
use tokio::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use webdriver::Browser;

/// One browser at a time: the suites run on small machines.
static BROWSER: Mutex<()> = Mutex::const_new(());

const WAIT: Duration = Duration::from_secs(8);

/// A 1×1 PNG, sent as a file from the console.
const TINY_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0, 0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d,
    0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs").join("screenshots")
}

async fn sim_gateway() -> common::TestGateway {
    common::TestGateway::start_with(|c| {
        common::sim_engine(c, 20, 200);
        c.messaging.allow_private_urls = true;
    })
    .await
}

fn url(gw: &common::TestGateway, rest: &str) -> String {
    format!("{}{rest}", gw.http.base)
}

/// Opens the console signed in through the fragment (as `wa-gateway console` prints it).
async fn open_signed_in(b: &Browser, gw: &common::TestGateway, token: &str) {
    b.goto(&url(gw, &format!("/console#token={token}"))).await;
    b.wait("window.__wag && window.__wag.sessionsShownAt !== null", WAIT, "the sessions list").await;
}

/// A screenshot for the README, without the transient notes in the corner.
async fn shot(b: &Browser, name: &str) {
    b.js("document.getElementById('flash').replaceChildren(); return true").await;
    b.screenshot(&screenshots().join(name)).await;
}

/// No CSP violation was seen, by the console's own counter or in chromium's log.
async fn assert_no_csp_violations(b: &Browser) {
    let probe = b.js("return window.__wag").await;
    assert_eq!(probe["cspViolations"], json!(0), "CSP violations: {probe}");
    let log = b.browser_log().await;
    let csp: Vec<&Value> = log
        .iter()
        .filter(|e| e["message"].as_str().is_some_and(|m| m.contains("Content Security Policy") || m.contains("Content-Security-Policy")))
        .collect();
    assert!(csp.is_empty(), "chromium logged CSP violations: {csp:?}");
}

// ------------------------------------------------------------------ serving

#[tokio::test(flavor = "multi_thread")]
async fn console_is_embedded_and_served_with_strict_headers() {
    let gw = common::TestGateway::start().await;
    let mut total = 0;
    for (path, ct) in [
        ("/console", "text/html"),
        ("/console/app.js", "text/javascript"),
        ("/console/style.css", "text/css"),
        ("/docs", "text/html"),
        ("/console/docs.js", "text/javascript"),
    ] {
        let r = gw.http.get(path, None).await;
        assert_eq!(r.status, 200, "{path}");
        let h = |n: &str| r.headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        assert!(h("content-type").starts_with(ct), "{path}: {}", h("content-type"));
        let csp = h("content-security-policy");
        for d in ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"] {
            assert!(csp.contains(d), "{path}: CSP {csp:?} lacks {d}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
        assert_eq!(h("x-frame-options"), "DENY", "{path}");
        assert_eq!(h("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(h("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(h("cache-control"), "no-cache", "{path}");
        let etag = h("etag");
        assert!(!etag.is_empty(), "{path}: no ETag");
        let again = gw.http.send(hyper::Method::GET, path, None, None, &[("if-none-match", &etag)]).await;
        assert_eq!(again.status, 304, "{path} revalidation");
        assert!(again.body.is_empty());
        total += r.body.len();
        if ct == "text/html" {
            let page = String::from_utf8_lossy(&r.body);
            assert!(!page.contains("<script>") && !page.contains("http://") && !page.contains("https://"), "{path}: inline script or remote URL");
        }
    }
    assert!(total > 0);
    // Unknown files: 404 in the error envelope; no path tricks.
    for path in ["/console/nope.js", "/console/..%2FCargo.toml", "/console/.."] {
        let r = gw.http.get(path, None).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.code(), "not_found", "{path}");
    }
    // Everything the console is made of, uncompressed.
    let all: usize = wa_gateway::console::ASSETS.iter().map(|a| a.bytes.len()).sum();
    println!("console assets: {} files, {all} bytes in all", wa_gateway::console::ASSETS.len());
    assert!(all < 150 * 1024, "console is {all} bytes (target < 150 KB)");
}

// ------------------------------------------------------------------ browser

/// Sign-in through the fragment, the sessions list, a new session's QR, and
/// linking through the sim hook: status turns `working` without a reload.
#[tokio::test(flavor = "multi_thread")]
async fn browser_signs_in_and_links_a_phone_by_qr() {
    let _one = BROWSER.lock().await;
    let gw = sim_gateway().await;
    let owner = gw.owner("acme");
    for label in ["Support line", "Sales"] {
        common::create_session(&gw.http, &owner, label).await;
    }
    let b = Browser::start().await;
    let opened = Instant::now();
    open_signed_in(&b, &gw, &owner).await;
    let shown_ms = opened.elapsed().as_millis();
    let in_page = b.js("return window.__wag.sessionsShownAt").await;
    println!("sessions list shown: {shown_ms} ms after the WebDriver navigation began, {in_page} ms after navigation start (performance.now)");
    // The fragment token was taken and cleared from the address bar.
    let here = b.url().await;
    assert!(!here.contains("token="), "token left in the address bar: {here}");
    assert_eq!(b.js("return sessionStorage.getItem('wag.token')").await, json!(owner));
    assert_eq!(b.count("#sessions-rows tr").await, 2);
    // Transfer size of the first load (the console's own files).
    let sizes = b
        .js("const e = performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource')).filter(x => x.name.includes('/console')); \
             return {files: e.length, transfer: e.reduce((a, x) => a + x.transferSize, 0), decoded: e.reduce((a, x) => a + x.decodedBodySize, 0)}")
        .await;
    println!("console first load: {sizes}");
    assert!(sizes["decoded"].as_u64().unwrap_or(u64::MAX) < 150 * 1024, "{sizes}");

    // A new session from the console: it starts and shows its QR.
    b.type_into("#new-session-label", "Front desk").await;
    b.click_css("#new-session").await;
    b.wait("document.querySelector('#session-status [data-status]')", WAIT, "the session screen").await;
    b.wait("(() => { const i = document.getElementById('qr-img'); return i && i.src.startsWith('blob:') && i.complete && i.naturalWidth > 0; })()", WAIT, "the QR image").await;
    let id = b.wait("location.hash.split('/')[2]", WAIT, "the session id in the URL").await.as_str().unwrap_or("").to_string();
    shot(&b, "console-qr.png").await;

    // The phone scans: the page turns `working` and the QR goes, no reload.
    b.js("window.__noReload = true").await;
    let r = gw.http.post(&format!("/api/v1/sessions/{id}/sim/pair"), Some(&owner), json!({"phoneNumber": "6281100000001"})).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    b.wait("document.querySelector('#session-status [data-status=working]')", WAIT, "status working").await;
    b.wait("document.getElementById('qr').classList.contains('hidden') && !document.getElementById('qr-img').getAttribute('src')", WAIT, "the QR to disappear").await;
    assert_eq!(b.js("return window.__noReload === true").await, json!(true), "the page reloaded");
    let fields = b.js("return document.getElementById('session-fields').innerText").await;
    assert!(fields.as_str().unwrap_or("").contains("6281100000001"), "{fields}");

    // Settings are PATCHed from the form.
    b.type_into("#edit-label", "Front desk (Jakarta)").await;
    b.type_into("#edit-rate-min", "30").await;
    b.click_css("#edit-typing").await;
    b.click_css("#save-settings").await;
    b.wait("document.getElementById('main').innerText.includes('Front desk (Jakarta)') && document.querySelector('h1').textContent === 'Front desk (Jakarta)'", WAIT, "the saved label").await;
    let s = gw.http.get(&format!("/api/v1/sessions/{id}"), Some(&owner)).await.json;
    assert_eq!((&s["label"], &s["ratePerMin"], &s["presenceTyping"]), (&json!("Front desk (Jakarta)"), &json!(30), &json!(false)), "{s}");

    b.click_css("a[href='#/sessions']").await;
    b.wait(&format!("document.querySelector('#sessions-rows tr[data-id=\"{id}\"] [data-status=working]')"), WAIT, "the list row").await;
    shot(&b, "console-sessions.png").await;
    assert_no_csp_violations(&b).await;
    b.quit().await;
}

/// Waits (up to 5 s) until message `msg` of session `sid` has `status`; answers it.
async fn wait_message(gw: &common::TestGateway, t: &str, sid: &str, msg: &str, status: &str) -> Value {
    for _ in 0..250 {
        let r = gw.http.get(&format!("/api/v1/sessions/{sid}/messages/{msg}"), Some(t)).await;
        if r.json["status"] == status {
            return r.json;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("message {msg} never reached {status}");
}

/// Chats and a thread: inbound messages appear live, a message sent from
/// the console ticks to `delivered` when the receipt arrives, and a
/// message text that is HTML stays text (no element, no dialog).
#[tokio::test(flavor = "multi_thread")]
async fn browser_chat_sends_ticks_and_renders_text_only() {
    let _one = BROWSER.lock().await;
    let gw = sim_gateway().await;
    let owner = gw.owner("acme");
    let sid = common::sim_working_session(&gw.http, &owner, json!({"label": "Support line", "presenceTyping": false})).await;
    let incoming = |text: &str| json!({"from": "6281200000002", "text": text, "lid": "123456789012345"});
    let r = gw.http.post(&format!("/api/v1/sessions/{sid}/sim/incoming"), Some(&owner), incoming("Hi, is my order on its way?")).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let other = json!({"from": "6281300000003", "text": "Thanks, received!"});
    assert_eq!(gw.http.post(&format!("/api/v1/sessions/{sid}/sim/incoming"), Some(&owner), other).await.status, 202);
    // Both are stored before the page opens.
    for _ in 0..250 {
        if common::walk(&gw.http, &format!("/api/v1/sessions/{sid}/messages"), &owner, 50).await.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let b = Browser::start().await;
    open_signed_in(&b, &gw, &owner).await;
    b.goto(&url(&gw, &format!("/console#/messages/{sid}"))).await;
    b.wait("document.querySelectorAll('#chats li[data-chat]').length === 2", WAIT, "two chats").await;
    // The customer wrote from a LID: the chat is named by both.
    let chat = b
        .wait("(() => { const li = [...document.querySelectorAll('#chats li[data-chat]')].find(l => l.textContent.includes('6281200000002')); return li && li.dataset.chat; })()", WAIT, "the customer's chat")
        .await;
    let chat = chat.as_str().unwrap_or("").to_string();
    b.click_css(&format!("#chats li[data-chat='{chat}']")).await;
    b.wait("document.getElementById('thread') && document.getElementById('thread').dataset.loaded === 'true' && document.querySelectorAll('#thread .msg.in').length === 1", WAIT, "the thread").await;
    // Both the phone number and the @lid of the chat are shown.
    let ids = b.js("return document.getElementById('chat-ids').innerText").await;
    let ids = ids.as_str().unwrap_or("");
    assert!(ids.contains("6281200000002@s.whatsapp.net") && ids.contains("123456789012345@lid"), "{ids}");
    let listed = b.js("return document.querySelector('#chats li.active').textContent").await;
    assert!(listed.as_str().unwrap_or("").contains("+6281200000002") && listed.as_str().unwrap_or("").contains("123456789012345@lid"), "{listed}");

    // Send from the console; the sim phone's receipt ticks it to delivered.
    b.type_into("#send-text", "Yes! It ships today.").await;
    b.click_css("#send").await;
    let msg = b.wait("(() => { const m = document.querySelector('#thread .msg.out'); return m && m.dataset.id; })()", WAIT, "the sent message").await;
    let msg = msg.as_str().unwrap_or("").to_string();
    let sent = wait_message(&gw, &owner, &sid, &msg, "sent").await;
    b.wait(&format!("document.querySelector('#thread .msg[data-id=\"{msg}\"] .status[data-status=sent]')"), WAIT, "status sent").await;
    let wa = sent["waMessageId"].as_str().expect("waMessageId");
    let r = gw.http.post(&format!("/api/v1/sessions/{sid}/sim/receipt"), Some(&owner), json!({"waMessageId": wa, "status": "delivered"})).await;
    assert!(r.status.is_success(), "{:?}", r.json);
    b.wait(&format!("document.querySelector('#thread .msg[data-id=\"{msg}\"] .status[data-status=delivered]')"), WAIT, "the delivered tick").await;

    // An inbound message appears live, and HTML in it is only text.
    let xss = "<img src=x onerror=alert(1)>";
    let r = gw.http.post(&format!("/api/v1/sessions/{sid}/sim/incoming"), Some(&owner), incoming(xss)).await;
    assert_eq!(r.status, 202);
    b.wait("document.querySelectorAll('#thread .msg.in').length === 2", WAIT, "the live inbound message").await;
    let last = b.js("const m = document.querySelectorAll('#thread .msg.in'); return m[m.length - 1].querySelector('.text').textContent").await;
    assert_eq!(last, json!(xss), "the text is shown as typed");
    assert_eq!(b.count("#main img").await, 0, "the message text became an element");
    let chat_preview = b.js("return document.querySelector('#chats li.active .last').textContent").await;
    assert_eq!(chat_preview, json!(xss));
    tokio::time::sleep(Duration::from_millis(300)).await;
    match b.alert_text().await {
        Err(e) => assert_eq!(e.error, "no such alert", "{e:?}"),
        Ok(text) => panic!("a dialog opened: {text:?}"),
    }
    // A file goes as base64 media, typed by its MIME type.
    let png = gw.dir.path().join("photo.png");
    std::fs::write(&png, TINY_PNG).expect("write png");
    b.type_into("#send-file", png.to_str().expect("utf-8 path")).await;
    b.type_into("#send-text", "Your receipt").await;
    b.click_css("#send").await;
    b.wait("document.querySelectorAll('#thread .msg.out').length === 2", WAIT, "the sent file").await;
    let file_msg = b.js("const m = document.querySelectorAll('#thread .msg.out'); return m[1].dataset.id").await;
    let stored = gw.http.get(&format!("/api/v1/sessions/{sid}/messages/{}", file_msg.as_str().unwrap_or("")), Some(&owner)).await;
    assert_eq!((&stored.json["type"], &stored.json["media"]["mimetype"], &stored.json["text"]), (&json!("image"), &json!("image/png"), &json!("Your receipt")), "{:?}", stored.json);
    assert_eq!(stored.json["media"]["fileName"], "photo.png");
    assert_eq!(stored.json["media"]["sizeBytes"], TINY_PNG.len());
    shot(&b, "console-chat.png").await;

    // The event tail shows what arrives, filtered by type.
    b.click_css("#nav-events").await;
    b.wait_el("#tail-type", WAIT).await;
    b.js("const s = document.getElementById('tail-type'); s.value = 'message.received'; return true").await;
    let r = gw.http.post(&format!("/api/v1/sessions/{sid}/sim/incoming"), Some(&owner), incoming("tail me")).await;
    assert_eq!(r.status, 202);
    b.wait("document.querySelector('#tail-rows tr[data-type=\"message.received\"]')", WAIT, "the event row").await;
    assert_eq!(b.count("#tail-rows tr:not([data-type='message.received'])").await, 0, "the type filter let others through");
    assert_no_csp_violations(&b).await;
    b.quit().await;
}

/// Webhooks (secret shown once), api-keys (key shown once), the docs page,
/// and a member's console: sign-in by pasting a token, no controls the
/// member may not use.
#[tokio::test(flavor = "multi_thread")]
async fn browser_webhooks_keys_docs_and_member_view() {
    let _one = BROWSER.lock().await;
    let gw = sim_gateway().await;
    let owner = gw.owner("acme");
    let session = common::create_session(&gw.http, &owner, "Support line").await;
    let sid = session["id"].as_str().expect("id").to_string();
    let b = Browser::start().await;
    open_signed_in(&b, &gw, &owner).await;

    b.click_css("#nav-webhooks").await;
    b.type_into("#webhook-url", "http://127.0.0.1:9/hooks/whatsapp").await;
    b.type_into("#webhook-description", "CRM").await;
    b.click_css("#webhook-create").await;
    let secret = b.wait("document.getElementById('webhook-secret') && document.getElementById('webhook-secret').textContent", WAIT, "the secret").await;
    assert!(secret.as_str().unwrap_or("").starts_with("whsec_"), "{secret}");
    b.wait("document.querySelectorAll('#webhooks-rows tr').length === 1", WAIT, "the webhook row").await;
    let list = gw.http.get("/api/v1/webhooks", Some(&owner)).await;
    assert_eq!(list.json["data"][0]["url"], "http://127.0.0.1:9/hooks/whatsapp");
    // Disable it from the console.
    b.click_css("#webhooks-rows tr button[data-action=toggle]").await;
    b.wait("document.querySelector('#webhooks-rows tr[data-enabled=false]')", WAIT, "disabled").await;
    assert_eq!(gw.http.get("/api/v1/webhooks", Some(&owner)).await.json["data"][0]["enabled"], false);
    // A test event, its delivery attempt in the log (the target refuses
    // connections), and a rotated secret shown once more.
    b.click_css("#webhooks-rows tr button[data-action=toggle]").await;
    b.wait("document.querySelector('#webhooks-rows tr[data-enabled=true]')", WAIT, "enabled again").await;
    b.click_css("#webhooks-rows tr button[data-action=test]").await;
    let wid = list.json["data"][0]["id"].as_str().expect("id").to_string();
    let mut attempted = false;
    for _ in 0..250 {
        let d = gw.http.get(&format!("/api/v1/webhooks/{wid}/deliveries"), Some(&owner)).await;
        if d.json["data"].as_array().is_some_and(|d| !d.is_empty()) {
            attempted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(attempted, "the test event was never attempted");
    b.click_css("#webhooks-rows tr button[data-action=deliveries]").await;
    b.wait("document.querySelectorAll('#deliveries tbody tr').length >= 1", WAIT, "the delivery log").await;
    b.click_css("#webhooks-rows tr button[data-action=rotate]").await;
    b.click_css("#webhooks-rows tr button[data-action=rotate]").await;
    let rotated = b
        .wait(&format!("(() => {{ const s = document.getElementById('webhook-secret'); return s && s.textContent !== {secret} && s.textContent; }})()"), WAIT, "the new secret")
        .await;
    assert!(rotated.as_str().unwrap_or("").starts_with("whsec_"), "{rotated}");
    let secret = rotated;
    // Shown once: gone after leaving the screen.
    b.click_css("#nav-sessions").await;
    b.click_css("#nav-webhooks").await;
    b.wait("document.querySelectorAll('#webhooks-rows tr').length === 1", WAIT, "the webhook row again").await;
    assert_eq!(b.count("#webhook-secret").await, 0, "the secret was shown twice");
    let page = b.js("return document.body.innerText").await;
    assert!(!page.as_str().unwrap_or("").contains(secret.as_str().unwrap_or("-")), "the secret is still on the page");

    b.click_css("#nav-keys").await;
    b.type_into("#key-name", "billing").await;
    b.click_css("#key-create").await;
    let key = b.wait("document.getElementById('key-secret') && document.getElementById('key-secret').textContent", WAIT, "the key").await;
    let key = key.as_str().unwrap_or("").to_string();
    assert!(key.starts_with("wa_"), "{key}");
    b.wait("document.querySelectorAll('#keys-rows tr').length === 1", WAIT, "the key row").await;
    // The key works (it is the one shown), and an api-key can sign in too.
    let me = gw.http.get("/api/v1/me", Some(&key)).await;
    assert_eq!(me.json["kind"], "api_key", "{:?}", me.json);

    b.goto(&url(&gw, "/docs")).await;
    b.wait("document.documentElement.dataset.ready === 'true'", WAIT, "the docs").await;
    let ops = b.count("main details[id]").await;
    assert!(ops > 50, "{ops} operations and schemas rendered");
    assert_no_csp_violations(&b).await;

    // A member signs in by pasting a token: no controls they may not use.
    b.goto(&url(&gw, "/console")).await;
    b.click_css("#signout").await;
    let member = gw.token("mia", Some("acme"), Some("member"), false);
    b.type_into("#token-input", &member).await;
    b.click_css("#signin-button").await;
    b.wait(&format!("document.querySelector('#sessions-rows tr[data-id=\"{sid}\"]')"), WAIT, "the member's sessions").await;
    assert!(b.js("return document.getElementById('whoami').textContent").await.as_str().unwrap_or("").contains("member"));
    for absent in ["#new-session", "#nav-webhooks", "#nav-keys"] {
        assert_eq!(b.count(absent).await, 0, "a member sees {absent}");
    }
    assert_eq!(b.count("#nav-messages").await, 1, "a member reads messages");
    b.click_css(&format!("#sessions-rows tr[data-id='{sid}']")).await;
    b.wait("document.querySelector('#session-status [data-status]')", WAIT, "the session").await;
    for absent in [".control", "#qr", "#session-settings", "#pair-phone", "button.danger"] {
        assert_eq!(b.count(absent).await, 0, "a member sees {absent}");
    }
    assert_eq!(b.count("#open-messages").await, 1);
    // The member may send: the send box is there.
    b.goto(&url(&gw, &format!("/console#/messages/{sid}/6281200000002%40s.whatsapp.net"))).await;
    b.wait_el("#send-text", WAIT).await;
    // The API still decides: the member's own token is refused a control call.
    let r = gw.http.post(&format!("/api/v1/sessions/{sid}/start"), Some(&member), json!({})).await;
    assert_eq!(r.status, 403);
    assert_no_csp_violations(&b).await;

    // A super_admin without an organization sees every organization's sessions.
    common::create_session(&gw.http, &gw.owner("globex"), "Globex sales").await;
    b.click_css("#signout").await;
    b.type_into("#token-input", &gw.super_admin()).await;
    b.click_css("#signin-button").await;
    b.wait("document.querySelectorAll('#sessions-rows tr').length === 2", WAIT, "every organization's sessions").await;
    assert_eq!(b.count("#filter-organizationId").await, 1);
    b.js("const f = document.getElementById('filter-organizationId'); f.value = 'globex'; f.dispatchEvent(new Event('change')); return true").await;
    b.wait("document.querySelectorAll('#sessions-rows tr').length === 1 && document.querySelector('#sessions-rows tr').innerText.includes('Globex')", WAIT, "the filtered list").await;
    assert_eq!(b.count("#nav-webhooks").await + b.count("#nav-keys").await + b.count("#new-session").await, 0);
    b.quit().await;
}
