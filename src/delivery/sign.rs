//! Standard Webhooks signing: `v1,<base64 HMAC-SHA256(secret, "id.timestamp.body")>`,
//! one per signing secret, space-separated.

use base64::Engine as _;
use ring::hmac;

/// The `webhook-signature` header value for `body` sent as `id` at `timestamp` (s).
pub fn signature_header(secrets: &[[u8; 32]], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets.iter().map(|s| format!("v1,{}", sign(s, id, timestamp, body))).collect::<Vec<_>>().join(" ")
}

/// base64 of HMAC-SHA256 over `id.timestamp.body`.
pub fn sign(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(id.as_bytes());
    ctx.update(b".");
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    base64::engine::general_purpose::STANDARD.encode(ctx.sign().as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks specification's own example.
    #[test]
    fn matches_the_specification_example() {
        let secret = base64::engine::general_purpose::STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("b64");
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body), "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn one_signature_per_secret() {
        let h = signature_header(&[[1; 32], [2; 32]], "evt_1", 5, b"{}");
        let parts: Vec<&str> = h.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.starts_with("v1,")));
        assert_ne!(parts[0], parts[1]);
    }
}
