//! The directory part of `/openapi.json` (CONTRACT §12): contacts, number checks,
//! pictures, blocking, presence, the profile, and the sim engine's directory hooks. Built with the helpers of
//! [`crate::ops::openapi`], merged into its document there.

use serde_json::{json, Map, Value};

use super::{id_param, json_response, list_of, list_params, object, op, schema, string_enum, Op, AUTH, BODY_ERRORS, MILLIS};
use crate::api::contacts::MAX_CHECK;
use crate::api::profile::{MAX_ABOUT_CHARS, MAX_NAME_CHARS};

/// `{id}` and `{contact}`.
fn contact_params() -> Vec<Value> {
    let mut p = id_param();
    p.push(json!({"name": "contact", "in": "path", "required": true, "schema": {"type": "string"},
        "description": "Phone digits, a <digits>@s.whatsapp.net JID or a <digits>@lid (percent-encode the @); \
            a group id is 400"}));
    p
}

const NEEDS_NETWORK: &str = "Needs the WhatsApp connection: 409 `conflict` unless the session is `working`.";

pub(super) fn operations() -> Vec<(&'static str, &'static str, Op)> {
    let ok = |name: &str, what: &str| (200, json_response(what, schema(name)));
    let picture_ok = (200, json!({"description": "The JPEG", "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}}));
    let blocked = json!({"name": "blocked", "in": "query", "required": false, "description": "Only blocked (true) or unblocked (false) contacts",
        "schema": string_enum(&["true", "false"])});
    let size = json!({"name": "size", "in": "query", "required": false, "description": "preview (default) or full",
        "schema": string_enum(&["preview", "full"])});
    vec![
        ("post", "/api/v1/sessions/{id}/sim/contacts",
            op("simContacts", "Sim engine only: the simulated network's directory and the phone's address book [sessions:control]",
                "sessions", AUTH, (202, json_response("Set; named entries are stored as contacts", schema("SimContactsSet"))))
            .describe("Entries replace earlier ones of the same phone number. Entries with a `name` are also synced \
                to the phone's address book: stored as contacts at once (a `contact.updated` each), no number-check \
                cache filled. Numbers not set are on WhatsApp with no names; 999… are not; `addable: false` makes \
                group adds answer `needs_invite`. 409 when named entries are given and the session is not running. \
                404 unless the gateway runs `--engine sim`.")
            .params(id_param()).body("SimContacts", true).errors(&BODY_ERRORS).errors(&[403, 404, 409, 503])),
        ("post", "/api/v1/sessions/{id}/sim/presence",
            op("simPresence", "Sim engine only: a contact's presence [sessions:control]", "sessions", AUTH,
                (202, json_response("Whether it reached the session", schema("SimPresenceSent"))))
            .describe("Delivered (a `presence.update` event, stored before the answer) only if the session \
                subscribed to that contact. 409 when the session is not running. 404 unless `--engine sim`.")
            .params(id_param()).body("SimPresence", true).errors(&BODY_ERRORS).errors(&[403, 404, 409, 503])),
        ("post", "/api/v1/sessions/{id}/contacts/check",
            op("checkNumbers", "Which numbers are on WhatsApp [contacts:read]", "sessions", AUTH,
                ok("NumberCheckList", "One answer per distinct number, in the order given"))
            .describe(&format!("1 to {MAX_CHECK} numbers of 6 to 20 digits. Answers are cached in the data file \
                (--contact-check-ttl), not-on-WhatsApp included; every number not answered from the cache spends \
                one unit of the session's lookup budget (--lookups-per-hour, a rolling hour). A request that would \
                overspend it is 429 `rate_limited` (details.limit `lookups`, Retry-After the seconds until enough \
                units are free) and nothing is looked up. Numbers on WhatsApp become contacts. {NEEDS_NETWORK} \
                (only when something is not cached)"))
            .params(id_param()).body("CheckNumbers", true).errors(&BODY_ERRORS).errors(&[403, 404, 409, 503])),
        ("get", "/api/v1/sessions/{id}/contacts",
            op("listContacts", "The session's contacts [contacts:read]", "sessions", AUTH,
                ok("ContactList", "One page of contacts, in jid order (then lid; contacts known only by @lid first)"))
            .params([id_param(), list_params(&[]), vec![blocked]].concat()).errors(&[400, 403, 404])),
        ("get", "/api/v1/sessions/{id}/contacts/{contact}",
            op("getContact", "A contact and its about text [contacts:read]", "sessions", AUTH,
                ok("ContactWithAbout", "The stored contact"))
            .describe("A contact the session never saw is 404 (looking up is contacts/check's job). `about` is \
                asked of WhatsApp when the session is working and kept an hour; otherwise the kept one, or null.")
            .params(contact_params()).errors(&[400, 403, 404])),
        ("get", "/api/v1/sessions/{id}/contacts/{contact}/picture",
            op("getContactPicture", "A contact's picture [contacts:read]", "sessions", AUTH, picture_ok)
            .describe(&format!("Kept an hour. 404 when there is none, privacy hides it, or the session never saw \
                the contact. {NEEDS_NETWORK} (when not kept)"))
            .params([contact_params(), vec![size]].concat()).errors(&[400, 403, 404, 409, 503])),
        ("put", "/api/v1/sessions/{id}/contacts/{contact}/block",
            op("blockContact", "Block a contact [chats:write]", "sessions", AUTH, ok("Contact", "The contact"))
            .describe(&format!("A contact the session never saw is 404. `contact.updated` when its blocked state \
                changed. {NEEDS_NETWORK}"))
            .params(contact_params()).errors(&[400, 403, 404, 409])),
        ("delete", "/api/v1/sessions/{id}/contacts/{contact}/block",
            op("unblockContact", "Unblock a contact [chats:write]", "sessions", AUTH, ok("Contact", "The contact"))
            .describe(&format!("A contact the session never saw is 404. `contact.updated` when its blocked state \
                changed. {NEEDS_NETWORK}"))
            .params(contact_params()).errors(&[400, 403, 404, 409])),
        ("put", "/api/v1/sessions/{id}/presence",
            op("setPresence", "Show the number as available or unavailable [messages:send]", "sessions", AUTH,
                ok("OwnPresence", "The presence shown"))
            .describe(NEEDS_NETWORK)
            .params(id_param()).body("OwnPresence", true).errors(&BODY_ERRORS).errors(&[403, 404, 409])),
        ("post", "/api/v1/sessions/{id}/presence/subscribe",
            op("subscribePresence", "Receive a contact's presence as presence.update events [contacts:read]",
                "sessions", AUTH, (202, json_response("Subscribed", schema("PresenceSubscribed"))))
            .describe(&format!("presence.update events are kept --presence-retention. {NEEDS_NETWORK}"))
            .params(id_param()).body("SubscribePresence", true).errors(&BODY_ERRORS).errors(&[403, 404, 409])),
        ("get", "/api/v1/sessions/{id}/profile",
            op("getProfile", "The number's own name and about [sessions:read]", "sessions", AUTH,
                ok("Profile", "As last set or connected with (also while the session is not working)"))
            .params(id_param()).errors(&[403, 404])),
        ("patch", "/api/v1/sessions/{id}/profile",
            op("updateProfile", "Change the number's name or about [sessions:write]", "sessions", AUTH,
                ok("Profile", "The profile"))
            .describe(&format!("Sent to WhatsApp, then stored. {NEEDS_NETWORK}"))
            .params(id_param()).body("PatchProfile", true).errors(&BODY_ERRORS).errors(&[403, 404, 409])),
        ("put", "/api/v1/sessions/{id}/profile/picture",
            op("setProfilePicture", "Set the number's picture [sessions:write]", "sessions", AUTH,
                ok("Profile", "The profile"))
            .describe(&format!("The body is the image: image/jpeg or image/png, at most 5 MiB (413 beyond); \
                another Content-Type is 415, a body that is not that image 400. {NEEDS_NETWORK}"))
            .set("requestBody", json!({"required": true, "content": {
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}}}}))
            .params(id_param()).errors(&BODY_ERRORS).errors(&[403, 404, 409])),
        ("delete", "/api/v1/sessions/{id}/profile/picture",
            op("deleteProfilePicture", "Remove the number's picture [sessions:write]", "sessions", AUTH,
                ok("Profile", "The profile"))
            .describe(NEEDS_NETWORK)
            .params(id_param()).errors(&[403, 404, 409])),
    ]
}

pub(super) fn schemas() -> Map<String, Value> {
    let s_null = json!({"type": ["string", "null"]});
    let digits = json!({"type": "string", "pattern": "^[0-9]{6,20}$"});
    let contact_props = json!({
        "jid": {"type": ["string", "null"], "description": "<digits>@s.whatsapp.net"},
        "lid": {"type": ["string", "null"], "description": "<digits>@lid"},
        "phoneNumber": {"type": ["string", "null"], "description": "Digits"},
        "name": {"type": ["string", "null"], "description": "As saved in the phone's address book"},
        "pushName": {"type": ["string", "null"], "description": "The name the contact set"},
        "businessName": s_null,
        "isBusiness": {"type": "boolean"},
        "isBlocked": {"type": "boolean"},
        "updatedAt": {"type": "integer", "description": MILLIS},
    });
    let contact_fields = ["jid", "lid", "phoneNumber", "name", "pushName", "businessName", "isBusiness", "isBlocked", "updatedAt"];
    let mut with_about = contact_props.clone();
    with_about["about"] = json!({"type": ["string", "null"], "description": "Status text; null when hidden or unknown"});
    let mut about_fields = contact_fields.to_vec();
    about_fields.push("about");
    let v = json!({
        "Contact": object(&contact_fields, contact_props),
        "ContactWithAbout": object(&about_fields, with_about),
        "ContactList": list_of("Contact"),
        "Person": object(&["jid", "lid", "phoneNumber"], json!({
            "jid": s_null, "lid": s_null, "phoneNumber": s_null})),
        "CheckNumbers": object(&["phoneNumbers"], json!({
            "phoneNumbers": {"type": "array", "minItems": 1, "maxItems": MAX_CHECK, "items": digits}})),
        "NumberCheck": object(&["phoneNumber", "onWhatsApp", "jid", "lid", "isBusiness"], json!({
            "phoneNumber": {"type": "string"}, "onWhatsApp": {"type": "boolean"},
            "jid": s_null, "lid": s_null, "isBusiness": {"type": "boolean"}})),
        "NumberCheckList": object(&["data"], json!({"data": {"type": "array", "items": schema("NumberCheck")}})),
        "OwnPresence": object(&["status"], json!({"status": string_enum(&["available", "unavailable"])})),
        "SubscribePresence": object(&["contact"], json!({
            "contact": {"type": "string", "description": "Phone digits, a @s.whatsapp.net JID or a @lid"}})),
        "PresenceSubscribed": object(&["contact"], json!({"contact": schema("Person")})),
        "Profile": object(&["name", "about"], json!({"name": s_null, "about": s_null})),
        "PatchProfile": object(&[], json!({
            "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS},
            "about": {"type": "string", "maxLength": MAX_ABOUT_CHARS}})),
        "SimContacts": object(&["contacts"], json!({"contacts": {"type": "array", "items": object(&["phoneNumber"], json!({
            "phoneNumber": digits, "lid": {"type": "string"}, "name": {"type": "string"}, "pushName": {"type": "string"},
            "isBusiness": {"type": "boolean"}, "about": {"type": "string"}, "picture": {"type": "boolean"},
            "addable": {"type": "boolean"}}))}})),
        "SimContactsSet": object(&["contacts"], json!({"contacts": {"type": "integer", "description": "Entries set"}})),
        "SimPresence": object(&["from", "status"], json!({
            "from": digits, "status": string_enum(&["available", "unavailable", "composing", "recording", "paused"])})),
        "SimPresenceSent": object(&["delivered"], json!({"delivered": {"type": "boolean"}})),
    });
    v.as_object().cloned().unwrap_or_default()
}
