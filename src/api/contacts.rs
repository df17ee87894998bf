//! Contacts (CONTRACT §12): number checks, the stored directory, pictures, blocking.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};

use super::cursor::{CursorScope, ListKind};
use super::directory::{contact_param, engine_error, spend_lookups, Target};
use crate::app::App;
use crate::auth::Permission;
use crate::directory::contacts::{contact_json, record_change};
use crate::engine::NumberCheck;
use crate::http::response::{self, Resp};
use crate::http::{ApiError, Req};
use crate::store::contact_records::{Contact, NumberCheckRecord};
use crate::store::contacts::{self as stored, ContactChange, ContactKey};
use crate::store::now_ms;

/// Most numbers in one `contacts/check`.
pub const MAX_CHECK: usize = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CheckBody {
    phone_numbers: Vec<String>,
}

/// Whether a cached answer checked at `checked_at` is still good at `now`.
pub fn fresh(checked_at: i64, now: i64, ttl_ms: i64) -> bool {
    now.saturating_sub(checked_at) < ttl_ms
}

fn check_json(phone: &str, n: &NumberCheckRecord) -> Value {
    json!({"phoneNumber": phone, "onWhatsApp": n.on_whatsapp, "jid": n.jid, "lid": n.lid, "isBusiness": n.is_business})
}

/// `POST /api/v1/sessions/{id}/contacts/check` [contacts:read]: cached
/// answers are free; the rest spend the lookup budget (one admission)
/// before the network is asked.
pub async fn check(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let target = Target::of(&app, &req, Permission::ContactsRead).await?;
    let b: CheckBody = req.json()?;
    if b.phone_numbers.is_empty() || b.phone_numbers.len() > MAX_CHECK {
        return Err(ApiError::invalid("phoneNumbers", format!("phoneNumbers holds 1 to {MAX_CHECK} numbers")));
    }
    let mut phones = Vec::new();
    let mut seen = HashSet::new();
    for (i, p) in b.phone_numbers.iter().enumerate() {
        if !(6..=20).contains(&p.len()) || !p.bytes().all(|c| c.is_ascii_digit()) {
            return Err(ApiError::invalid(&format!("phoneNumbers[{i}]"), "each phone number is 6 to 20 digits"));
        }
        if seen.insert(p.clone()) {
            phones.push(p.clone());
        }
    }
    let key = target.key();
    let ttl = app.config.directory.contact_check_ttl.as_millis() as i64;
    let now = now_ms();
    let wanted = phones.clone();
    let mut answers: HashMap<String, NumberCheckRecord> = app
        .blocking(move |s| {
            let txn = s.read()?;
            let mut out = HashMap::new();
            for p in wanted {
                if let Some(n) = stored::number_check(&txn, key, &p)?.filter(|n| fresh(n.checked_at, now, ttl)) {
                    out.insert(p, n);
                }
            }
            Ok(out)
        })
        .await?;
    let ask: Vec<String> = phones.iter().filter(|p| !answers.contains_key(*p)).cloned().collect();
    if !ask.is_empty() {
        let conn = target.connection(&app)?;
        spend_lookups(&app, &target, ask.len() as u32).await?;
        let got = conn.check_numbers(&ask).await.map_err(engine_error)?;
        let checked_at = now_ms();
        let fresh: Vec<NumberCheck> = got.into_iter().filter(|n| ask.contains(&n.phone)).collect();
        let session = target.session.clone();
        let store_these = fresh.clone();
        app.committer
            .run(move |txn| {
                for n in &store_these {
                    let rec = NumberCheckRecord { on_whatsapp: n.on_whatsapp, jid: n.jid.clone(), lid: n.lid.clone(), is_business: n.is_business, checked_at };
                    stored::put_number_check(txn, key, &n.phone, &rec)?;
                    if n.on_whatsapp && (n.jid.is_some() || n.lid.is_some()) {
                        let change = ContactChange { jid: n.jid.clone(), lid: n.lid.clone(), is_business: Some(n.is_business), ..ContactChange::default() };
                        record_change(txn, key, &session, &change, checked_at)?;
                    }
                }
                Ok(())
            })
            .await?;
        for n in fresh {
            answers.insert(
                n.phone.clone(),
                NumberCheckRecord { on_whatsapp: n.on_whatsapp, jid: n.jid, lid: n.lid, is_business: n.is_business, checked_at },
            );
        }
    }
    let data: Vec<Value> = phones
        .iter()
        .map(|p| match answers.get(p) {
            Some(n) => check_json(p, n),
            // The network gave no answer for it: not on WhatsApp as far as it said.
            None => json!({"phoneNumber": p, "onWhatsApp": false, "jid": null, "lid": null, "isBusiness": false}),
        })
        .collect();
    Ok(response::json(200, &json!({"data": data})))
}

/// A list position as cursor bytes: the jid's length (2 bytes), the jid, the lid.
fn encode_key((jid, lid): &ContactKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + jid.len() + lid.len());
    out.extend_from_slice(&(jid.len() as u16).to_be_bytes());
    out.extend_from_slice(jid.as_bytes());
    out.extend_from_slice(lid.as_bytes());
    out
}

fn decode_key(raw: &[u8]) -> Result<ContactKey, ApiError> {
    let bad = || ApiError::invalid_cursor("cursor belongs to another list");
    let n = usize::from(u16::from_be_bytes(raw.get(..2).and_then(|b| <[u8; 2]>::try_from(b).ok()).ok_or_else(bad)?));
    let jid = raw.get(2..2 + n).ok_or_else(bad)?;
    let lid = raw.get(2 + n..).ok_or_else(bad)?;
    Ok((String::from_utf8(jid.to_vec()).map_err(|_| bad())?, String::from_utf8(lid.to_vec()).map_err(|_| bad())?))
}

/// `GET /api/v1/sessions/{id}/contacts` [contacts:read]: §5 pages in `jid`
/// order (then `lid`), filter `blocked=true|false`.
pub async fn list(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let target = Target::of(&app, &req, Permission::ContactsRead).await?;
    let mut q = req.query()?;
    let (limit, cursor) = q.page()?;
    let blocked = match q.take("blocked").as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(ApiError::invalid("blocked", "blocked must be true or false")),
    };
    q.finish()?;
    let filters = format!(
        "org={}&session={}&blocked={}",
        target.access.org_id,
        target.id,
        blocked.map_or("", |b| if b { "true" } else { "false" })
    );
    let scope = CursorScope { meta: app.store.meta(), list: ListKind::Contacts, filters };
    let after = cursor.map(|c| scope.decode(&c).and_then(|raw| decode_key(&raw))).transpose()?;
    let key = target.key();
    let budget = limit * super::sessions::SCAN_FACTOR;
    let (rows, next) = app
        .blocking(move |s| stored::page(&s.read()?, key, after, limit, budget, |c| blocked.is_none_or(|b| c.is_blocked == b)))
        .await?;
    let data: Vec<Value> = rows.iter().map(contact_json).collect();
    let next = next.map(|k| scope.encode(&encode_key(&k)));
    Ok(response::json(200, &json!({"data": data, "nextCursor": next})))
}

/// The stored contact `address` names, or 404.
async fn stored_contact(app: &App, target: &Target, address: &str) -> Result<Contact, ApiError> {
    let key = target.key();
    let a = address.to_string();
    app.blocking(move |s| stored::find(&s.read()?, key, &a))
        .await?
        .ok_or_else(|| ApiError::not_found("contact"))
}

/// `GET /api/v1/sessions/{id}/contacts/{contact}` [contacts:read]: the
/// stored Contact plus `about` (asked of the network when the session is
/// working, kept an hour; otherwise the kept one, or null).
pub async fn get(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let target = Target::of(&app, &req, Permission::ContactsRead).await?;
    let address = contact_param(&req)?;
    let c = stored_contact(&app, &target, &address).await?;
    let ask = c.jid.clone().or(c.lid.clone()).unwrap_or(address);
    let about = match app.directory.about(target.id, &ask) {
        Some(a) => a,
        None => match target.connection(&app) {
            Ok(conn) => match conn.contact_about(&ask).await {
                Ok(a) => {
                    app.directory.put_about(target.id, &ask, a.as_deref());
                    a
                }
                Err(e) => {
                    tracing::debug!(error = %e, "contact about: not fetched");
                    None
                }
            },
            Err(_) => None,
        },
    };
    let mut v = contact_json(&c);
    v["about"] = json!(about);
    Ok(response::json(200, &v))
}

/// `GET /api/v1/sessions/{id}/contacts/{contact}/picture?size=preview|full`
/// [contacts:read]: the JPEG (kept an hour), 404 when there is none.
pub async fn picture(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let target = Target::of(&app, &req, Permission::ContactsRead).await?;
    let address = contact_param(&req)?;
    let mut q = req.query()?;
    let full = match q.take("size").as_deref() {
        None | Some("preview") => false,
        Some("full") => true,
        Some(_) => return Err(ApiError::invalid("size", "size must be preview or full")),
    };
    q.finish()?;
    let c = stored_contact(&app, &target, &address).await?;
    let ask = c.jid.clone().or(c.lid.clone()).unwrap_or(address);
    let jpeg = match app.directory.picture(target.id, &ask, full) {
        Some(p) => p,
        None => {
            let conn = target.connection(&app)?;
            let p = conn.picture(&ask, full).await.map_err(engine_error)?;
            app.directory.put_picture(target.id, &ask, full, p.clone());
            p
        }
    };
    let jpeg = jpeg.ok_or_else(|| ApiError::not_found("picture"))?;
    Ok(response::bytes(200, "image/jpeg", jpeg))
}

/// Blocks or unblocks a contact the session knows (404 otherwise): the
/// network first, then the stored contact (and `contact.updated` when its
/// blocked state changed).
async fn set_blocked(app: Arc<App>, req: Req, blocked: bool) -> Result<Resp, ApiError> {
    let target = Target::of(&app, &req, Permission::ChatsWrite).await?;
    let address = contact_param(&req)?;
    let known = stored_contact(&app, &target, &address).await?;
    let conn = target.connection(&app)?;
    let wire = known.jid.clone().or(known.lid.clone()).unwrap_or(address);
    conn.set_blocked(&wire, blocked).await.map_err(engine_error)?;
    let (key, session) = (target.key(), target.session.clone());
    let change = ContactChange { jid: known.jid, lid: known.lid, blocked: Some(blocked), ..ContactChange::default() };
    let c = app.committer.run(move |txn| record_change(txn, key, &session, &change, now_ms())).await?;
    Ok(response::json(200, &contact_json(&c)))
}

/// `PUT /api/v1/sessions/{id}/contacts/{contact}/block` [chats:write].
pub async fn block(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    set_blocked(app, req, true).await
}

/// `DELETE /api/v1/sessions/{id}/contacts/{contact}/block` [chats:write].
pub async fn unblock(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    set_blocked(app, req, false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_positions_round_trip_and_ttl() {
        let k = ("628@s.whatsapp.net".to_string(), "9@lid".to_string());
        assert_eq!(decode_key(&encode_key(&k)).ok(), Some(k));
        let empty = (String::new(), "1@lid".to_string());
        assert_eq!(decode_key(&encode_key(&empty)).ok(), Some(empty));
        assert!(decode_key(&[0, 9, b'a']).is_err());
        assert!(fresh(0, 9, 10) && !fresh(0, 10, 10));
    }
}
