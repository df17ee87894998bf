//! Media end to end through the default `whatsapp` engine, offline: the real
//! whatsapp-rust client in the gateway uploads encrypted media to the fake
//! media host of `tests/support/fake_wa` (over plain HTTP, see
//! `WaOptions::plain_http_media_hosts`) for a fake contact that downloads and
//! decrypts it, and downloads what a contact sends (issue 8).

mod common;
#[path = "support/fake_wa/mod.rs"]
mod fake_wa;
#[path = "support/fake_wa/flow.rs"]
mod flow;

use std::time::{Duration, Instant};

use base64::Engine as _;
use fake_wa::FakeWa;
use flow::{gateway_on, inbound, linked};
use hyper::Method;
use serde_json::json;

const PHONE: &str = "6281234567890";
const CONTACT: &str = "6289876543210";


/// A small real PNG (12×12 RGB noise, a few hundred bytes).
fn png() -> Vec<u8> {
    let (w, h) = (12u32, 12u32);
    let mut seed = 0x2545_f491_u32;
    let pixels: Vec<u8> = (0..w * h * 3)
        .map(|_| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (seed >> 16) as u8
        })
        .collect();
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().expect("png header");
    writer.write_image_data(&pixels).expect("png data");
    writer.finish().expect("png end");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_with_a_caption_reaches_a_contact_who_decrypts_its_bytes() {
    let fake = FakeWa::start().await;
    let gw = gateway_on(&fake, None).await;
    let token = gw.owner("org_media_out");
    let (sid, device) = linked(&gw, &fake, &token, PHONE).await;
    fake.contact(CONTACT);

    let image = png();
    assert!(image.len() > 200 && image.len() < 2000, "{} bytes", image.len());
    let caption = "Foto produk ✓";
    let body = json!({
        "to": CONTACT,
        "type": "image",
        "media": {"data": base64::engine::general_purpose::STANDARD.encode(&image), "mimetype": "image/png"},
        "text": caption,
    });
    let r = gw.http.post(&format!("/api/v1/sessions/{sid}/messages"), Some(&token), body).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let mid = r.json["id"].as_str().expect("id").to_string();
    let wa = r.json["waMessageId"].as_str().expect("waMessageId").to_string();

    assert!(
        fake.until(Duration::from_secs(15), |f| !f.received(CONTACT).is_empty()).await,
        "the contact got nothing; seen: {:?} media: {:?} unexpected: {:?}",
        fake.seen(),
        fake.media_requests(),
        fake.unexpected()
    );
    let got = fake.received(CONTACT);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].id.as_str(), got[0].kind.as_str()), (wa.as_str(), "image"), "{got:?}");
    assert_eq!(got[0].text.as_deref(), Some(caption), "{got:?}");
    assert_eq!(got[0].stanza_type, "media", "{got:?}");
    let im = got[0].message.image_message.as_option().expect("an ImageMessage");
    assert_eq!(im.mimetype.as_deref(), Some("image/png"));
    assert_eq!(im.file_length, Some(image.len() as u64));
    let bytes = fake.media_of(&got[0]).expect("the contact downloads and decrypts the image");
    assert_eq!(bytes, image, "the decrypted image is what was sent");
    // One upload over plain HTTP to the fake media host.
    let uploads: Vec<String> = fake.media_requests().into_iter().filter(|r| r.starts_with("POST /mms/image/")).collect();
    assert_eq!(uploads.len(), 1, "{:?}", fake.media_requests());
    assert!(uploads[0].ends_with(" 200"), "{uploads:?}");
    // The account's own phone got its copy, pointing at the same file.
    let mine = fake.received(PHONE);
    let own = mine.iter().find(|m| m.id == wa).expect("the own phone's copy");
    assert_eq!(fake.media_of(own).expect("the own copy decrypts"), image);

    let t = Instant::now();
    loop {
        let r = gw.http.get(&format!("/api/v1/sessions/{sid}/messages/{mid}"), Some(&token)).await;
        assert_eq!(r.status, 200, "{:?}", r.json);
        if r.json["status"] == "sent" {
            assert_eq!(r.json["type"], "image", "{}", r.json);
            assert_eq!(r.json["text"], caption, "{}", r.json);
            assert_eq!(r.json["media"]["mimetype"], "image/png", "{}", r.json);
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "never sent: {}", r.json);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = device;
    assert!(fake.unexpected().is_empty(), "stanzas the fake had no rule for: {:?}", fake.unexpected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_s_image_is_stored_and_its_media_downloads_as_sent() {
    let fake = FakeWa::start().await;
    let gw = gateway_on(&fake, None).await;
    let token = gw.owner("org_media_in");
    let (sid, device) = linked(&gw, &fake, &token, PHONE).await;
    fake.contact(CONTACT);

    let image = png();
    let wa = fake.deliver_image(CONTACT, &device, &image, "image/png", Some("Ini fotonya")).expect("delivered");
    let m = inbound(&gw, &token, &sid, &wa).await;
    assert_eq!(m["direction"], "in", "{m}");
    assert_eq!(m["type"], "image", "{m}");
    assert_eq!(m["text"], "Ini fotonya", "{m}");
    assert_eq!(m["media"]["mimetype"], "image/png", "{m}");
    assert_eq!(m["chatJid"], json!(format!("{CONTACT}@s.whatsapp.net")), "{m}");

    let mid = m["id"].as_str().expect("id");
    let r = gw.http.send(Method::GET, &format!("/api/v1/sessions/{sid}/messages/{mid}/media"), Some(&token), None, &[]).await;
    assert_eq!(r.status, 200, "{:?} media: {:?} unexpected: {:?}", r.json, fake.media_requests(), fake.unexpected());
    assert_eq!(r.headers.get("content-type").and_then(|v| v.to_str().ok()), Some("image/png"), "{:?}", r.headers);
    assert_eq!(&r.body[..], &image[..], "the downloaded media is what the contact sent");
    // The gateway fetched it from the fake media host, over plain HTTP.
    assert!(
        fake.media_requests().iter().any(|r| r.starts_with("GET /v/") && r.ends_with(" 200")),
        "{:?}",
        fake.media_requests()
    );
    assert!(fake.unexpected().is_empty(), "stanzas the fake had no rule for: {:?}", fake.unexpected());
}
