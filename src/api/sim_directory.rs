//! The sim engine's directory hooks (CONTRACT §15): the simulated network's
//! directory and address book (`sim/contacts`), and a contact's presence
//! (`sim/presence`, delivered only to a subscribed session). Each waits,
//! like `sim/incoming`, until its event is committed.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use super::lifecycle::{sim, sim_error};
use super::sim::settled;
use crate::app::App;
use crate::engine::directory::PresenceStatus;
use crate::engine::sim::SimContact;
use crate::http::response::{self, Resp};
use crate::http::{ApiError, Req};
use crate::messaging::acks;

/// Most entries in one `sim/contacts` call.
const MAX_SIM_CONTACTS: usize = 1_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ContactsBody {
    contacts: Vec<ContactEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ContactEntry {
    phone_number: String,
    lid: Option<String>,
    name: Option<String>,
    push_name: Option<String>,
    #[serde(default)]
    is_business: bool,
    about: Option<String>,
    #[serde(default)]
    picture: bool,
    addable: Option<bool>,
}

fn digits(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// `POST /api/v1/sessions/{id}/sim/contacts` → 202 `{"contacts": n}`.
pub async fn contacts(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let (sim, id) = sim(&app, &req).await?;
    let b: ContactsBody = req.json()?;
    if b.contacts.len() > MAX_SIM_CONTACTS {
        return Err(ApiError::invalid("contacts", format!("at most {MAX_SIM_CONTACTS} contacts at once")));
    }
    let mut people = Vec::with_capacity(b.contacts.len());
    for (i, e) in b.contacts.into_iter().enumerate() {
        if !digits(&e.phone_number, 6, 20) {
            return Err(ApiError::invalid(&format!("contacts[{i}].phoneNumber"), "phoneNumber must be 6 to 20 digits"));
        }
        let lid = match e.lid {
            Some(l) => {
                let user = l.strip_suffix("@lid").unwrap_or(&l);
                if !digits(user, 1, 32) {
                    return Err(ApiError::invalid(&format!("contacts[{i}].lid"), "lid must be digits or <digits>@lid"));
                }
                Some(format!("{user}@lid"))
            }
            None => None,
        };
        for (field, v) in [("name", &e.name), ("pushName", &e.push_name), ("about", &e.about)] {
            if v.as_ref().is_some_and(|s| s.chars().count() > 256) {
                return Err(ApiError::invalid(&format!("contacts[{i}].{field}"), format!("{field} is at most 256 characters")));
            }
        }
        people.push(SimContact {
            phone: e.phone_number,
            lid,
            name: e.name,
            push_name: e.push_name,
            is_business: e.is_business,
            about: e.about,
            picture: e.picture,
            addable: e.addable.unwrap_or(true),
        });
    }
    let n = people.len();
    let last = people.iter().rev().find(|p| p.name.is_some()).map(|p| format!("{}@s.whatsapp.net", p.phone));
    let waiting = last.map(|a| {
        let key = acks::contact_key(&a);
        (key.clone(), app.messaging.acks.wait_for(id, key))
    });
    if let Err(e) = sim.set_directory(id, people) {
        if let Some((key, _)) = &waiting {
            app.messaging.acks.forget(id, key);
        }
        return Err(sim_error(e));
    }
    if let Some((key, stored)) = waiting {
        settled(&app, id, &key, stored).await?;
    }
    Ok(response::json(202, &json!({"contacts": n})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PresenceBody {
    from: String,
    status: String,
}

/// `POST /api/v1/sessions/{id}/sim/presence` `{"from", "status"}` (`from`:
/// digits, as in `sim/incoming`) → 202 `{"delivered": bool}` (false: the
/// session did not subscribe to them).
pub async fn presence(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let (sim, id) = sim(&app, &req).await?;
    let b: PresenceBody = req.json()?;
    if !digits(&b.from, 6, 20) {
        return Err(ApiError::invalid("from", "from must be 6 to 20 digits"));
    }
    let status = PresenceStatus::parse(&b.status)
        .ok_or_else(|| ApiError::invalid("status", "status must be available, unavailable, composing, recording or paused"))?;
    let jid = format!("{}@s.whatsapp.net", b.from);
    let key = acks::presence_key(&jid);
    let stored = app.messaging.acks.wait_for(id, key.clone());
    match sim.sim_presence(id, &jid, status) {
        Ok(Some(_)) => {
            settled(&app, id, &key, stored).await?;
            Ok(response::json(202, &json!({"delivered": true})))
        }
        Ok(None) => {
            app.messaging.acks.forget(id, &key);
            Ok(response::json(202, &json!({"delivered": false})))
        }
        Err(e) => {
            app.messaging.acks.forget(id, &key);
            Err(sim_error(e))
        }
    }
}
