//! The directory's records (CONTRACT §12): a session's contacts, its
//! number-check answers, its lookup budget and its own profile, each in a
//! versioned envelope (see [`super::records`]) pinned by golden bytes below.

use serde::{Deserialize, Serialize};

use super::records::{record, Record};
use super::StoreError;

/// One contact of a session, as the API shows it (CONTRACT §12 Contact):
/// learned from the phone's address book, messages' push names, number
/// checks and the blocklist. At least one of `jid` and `lid` is set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ContactV1 {
    /// `<digits>@s.whatsapp.net`.
    pub jid: Option<String>,
    /// `<digits>@lid`.
    pub lid: Option<String>,
    /// The digits of `jid`.
    pub phone_number: Option<String>,
    /// As saved in the phone's address book.
    pub name: Option<String>,
    /// The name the contact set.
    pub push_name: Option<String>,
    pub business_name: Option<String>,
    pub is_business: bool,
    pub is_blocked: bool,
    /// Unix ms of the last change.
    pub updated_at: i64,
}

/// The current contact record.
pub type Contact = ContactV1;

#[derive(Serialize, Deserialize)]
enum ContactEnvelope {
    V1(ContactV1),
}

record!(ContactV1, ContactEnvelope, "contact");

/// The network's answer about one number (`contacts/check`), reused for
/// `--contact-check-ttl` ("not on WhatsApp" included).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct NumberCheckV1 {
    pub on_whatsapp: bool,
    pub jid: Option<String>,
    pub lid: Option<String>,
    pub is_business: bool,
    /// Unix ms the network was asked.
    pub checked_at: i64,
}

/// The current number-check record.
pub type NumberCheckRecord = NumberCheckV1;

#[derive(Serialize, Deserialize)]
enum NumberCheckEnvelope {
    V1(NumberCheckV1),
}

record!(NumberCheckV1, NumberCheckEnvelope, "number check");

/// What a session spent of its lookup budget in the last hour: (Unix ms,
/// units), oldest first. Kept so that a restart does not refill it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct LookupWindowV1 {
    pub spent: Vec<(i64, u32)>,
}

/// The current lookup-window record.
pub type LookupWindow = LookupWindowV1;

#[derive(Serialize, Deserialize)]
enum LookupWindowEnvelope {
    V1(LookupWindowV1),
}

record!(LookupWindowV1, LookupWindowEnvelope, "lookup budget");

/// The session's own profile as last set or seen (`GET profile` answers
/// it also while the session is not connected).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfileV1 {
    /// The push name.
    pub name: Option<String>,
    /// The about (status) text.
    pub about: Option<String>,
    /// Whether a picture was set through the API (and not removed since).
    pub has_picture: bool,
    pub updated_at: i64,
}

/// The current profile record.
pub type Profile = ProfileV1;

#[derive(Serialize, Deserialize)]
enum ProfileEnvelope {
    V1(ProfileV1),
}

record!(ProfileV1, ProfileEnvelope, "profile");

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Record + PartialEq + std::fmt::Debug>(value: &T, golden: &[u8]) {
        assert_eq!(value.encode(), golden);
        assert_eq!(T::decode(golden).ok().as_ref(), Some(value));
        let mut newer = golden.to_vec();
        newer[0] = 1;
        assert!(matches!(T::decode(&newer), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn contact_v1_golden_bytes() {
        let c = ContactV1 {
            jid: Some("1@s".into()),
            lid: None,
            phone_number: Some("1".into()),
            name: Some("A".into()),
            push_name: None,
            business_name: None,
            is_business: true,
            is_blocked: false,
            updated_at: 7,
        };
        let golden = [0, 1, 3, b'1', b'@', b's', 0, 1, 1, b'1', 1, 1, b'A', 0, 0, 1, 0, 14];
        round_trip(&c, &golden);
    }

    #[test]
    fn number_check_v1_golden_bytes() {
        let n = NumberCheckV1 { on_whatsapp: true, jid: Some("j".into()), lid: Some("l".into()), is_business: false, checked_at: 1 };
        round_trip(&n, &[0, 1, 1, 1, b'j', 1, 1, b'l', 0, 2]);
    }

    #[test]
    fn lookup_window_v1_golden_bytes() {
        let w = LookupWindowV1 { spent: vec![(1, 2), (3, 4)] };
        round_trip(&w, &[0, 2, 2, 2, 6, 4]);
    }

    #[test]
    fn profile_v1_golden_bytes() {
        let p = ProfileV1 { name: Some("N".into()), about: None, has_picture: true, updated_at: 2 };
        round_trip(&p, &[0, 1, 1, b'N', 0, 1, 4]);
    }
}
