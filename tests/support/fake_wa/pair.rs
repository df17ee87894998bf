//! The phone's half of linking a device: read the QR the gateway shows,
//! and vouch for the new device the way WhatsApp's primary does — an
//! `ADVSignedDeviceIdentity` signed by the account key, wrapped in an HMAC
//! keyed by the QR's ADV secret (modelled on wacore's pair tests).

use base64::Engine as _;
use whatsapp_rust::buffa::Message as _;
use whatsapp_rust::wacore::libsignal::protocol::KeyPair;
use whatsapp_rust::waproto::whatsapp as wa;

/// ADV account-signature prefix (wacore `pair.rs`: `ADV_PREFIX_ACCOUNT_SIGNATURE`).
const ACCOUNT_SIGNATURE_PREFIX: &[u8] = &[6, 0];

/// What a QR code carries: `ref,noise key,identity key,adv secret[,…]`.
#[derive(Clone, Debug)]
pub struct Qr {
    pub reference: String,
    pub noise_key: [u8; 32],
    pub identity_key: [u8; 32],
    pub adv_secret: Vec<u8>,
}

pub fn parse_qr(text: &str) -> Result<Qr, String> {
    let parts: Vec<&str> = text.split(',').collect();
    if parts.len() < 4 {
        return Err(format!("a QR has at least 4 comma-separated parts: {text}"));
    }
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.decode(s).map_err(|e| format!("QR base64 {s}: {e}"));
    let key = |s: &str| -> Result<[u8; 32], String> { b64(s)?.try_into().map_err(|_| format!("QR key {s} is not 32 bytes")) };
    Ok(Qr { reference: parts[0].to_string(), noise_key: key(parts[1])?, identity_key: key(parts[2])?, adv_secret: b64(parts[3])? })
}

/// The `device-identity` bytes of `<pair-success>`: the account (`account`)
/// vouches for the device whose identity key the QR named, as device `raw_id`
/// with key index `key_index`.
pub fn device_identity(account: &KeyPair, qr: &Qr, raw_id: u32, key_index: u32) -> Vec<u8> {
    let mut rng = rand::rng();
    let e2ee = wa::ADVEncryptionType::E2EE;
    let details = wa::ADVDeviceIdentity {
        raw_id: Some(raw_id),
        timestamp: Some(whatsapp_rust::wacore::time::now_secs_u64()),
        key_index: Some(key_index),
        account_type: Some(e2ee),
        device_type: Some(e2ee),
    }
    .encode_to_vec();
    let mut to_sign = ACCOUNT_SIGNATURE_PREFIX.to_vec();
    to_sign.extend_from_slice(&details);
    to_sign.extend_from_slice(&qr.identity_key);
    let sig = account.private_key.calculate_signature(&to_sign, &mut rng).expect("sign device identity");
    let signed = wa::ADVSignedDeviceIdentity {
        details: Some(details),
        account_signature_key: Some(account.public_key.public_key_bytes().to_vec()),
        account_signature: Some(sig.to_vec()),
        device_signature: None,
    }
    .encode_to_vec();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &qr.adv_secret);
    let mac = ring::hmac::sign(&key, &signed);
    wa::ADVSignedDeviceIdentityHMAC { details: Some(signed), hmac: Some(mac.as_ref().to_vec()), account_type: Some(e2ee) }
        .encode_to_vec()
}
