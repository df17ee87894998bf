//! The messaging part of `/openapi.json` (CONTRACT §9, §10): sending,
//! listing and revoking messages, their media, the event log, and the sim
//! engine's messaging hooks. Built with the helpers of
//! [`crate::ops::openapi`], merged into its document there.

use serde_json::{json, Map, Value};

use super::{
    id_param, json_response, list_of, list_params, object, op, r, schema, string_enum, Op, AUTH, BODY_ERRORS, MILLIS,
};
use crate::api::events::EVENT_TYPES;
use crate::api::message_input::MAX_TEXT_CHARS;
use crate::api::messages::MAX_BATCH;
use crate::store::message_records::{MessageStatus, MessageType};

/// Every message type (the API's `type`).
fn message_types() -> Vec<&'static str> {
    MessageType::ALL.iter().map(|t| t.as_str()).collect()
}

/// The types a send may declare: all but `unsupported`.
fn sendable_types() -> Vec<&'static str> {
    message_types().into_iter().filter(|t| *t != MessageType::Unsupported.as_str()).collect()
}

fn message_statuses() -> Vec<&'static str> {
    MessageStatus::ALL.iter().map(|s| s.as_str()).collect()
}

/// `id` and `{msgId}`: the path parameters of one message.
fn msg_params() -> Vec<Value> {
    vec![r("parameters", "id"), r("parameters", "msgId")]
}

/// The 202 of a send: `what`, and the replay header of an idempotent retry.
fn queued(what: Value) -> (u16, Value) {
    let mut ok = json_response("Queued; replays of the same Idempotency-Key and request answer the first 202 again", what);
    ok["headers"] = json!({"Idempotent-Replayed": {
        "description": "`true` when this is the kept answer to an earlier request with the same Idempotency-Key",
        "schema": string_enum(&["true"]),
    }});
    (202, ok)
}

/// A JSON body of the sim hooks: answered 202 with `{}`.
fn sim_ack() -> (u16, Value) {
    (202, json_response("Accepted", schema("Empty")))
}

const SIM_ONLY: &str = "404 unless the gateway runs `--engine sim`.";

/// The messaging operations, in route-table order.
pub(super) fn operations() -> Vec<(&'static str, &'static str, Op)> {
    let ok = |name: &str, what: &str| (200, json_response(what, schema(name)));
    let err = |what: &str| json_response(what, schema("Error"));
    let send_key = || vec![r("parameters", "id"), r("parameters", "idempotencyKey")];
    vec![
        ("post", "/api/v1/sessions/{id}/sim/receipt",
            op("simReceipt", "Sim engine only: the recipient receives or reads a message [sessions:control]",
                "sessions", AUTH, sim_ack())
            .describe("409 `conflict` when the session is not running or never sent that waMessageId. The \
                message's status then moves to `delivered` or `read` (never back). 202 only once the receipt \
                is stored, or held while writes are refused (applied when they work); else 503.")
            .params(id_param()).body("SimReceipt", true).errors(&BODY_ERRORS).errors(&[403, 404, 409, 503])),
        ("post", "/api/v1/sessions/{id}/sim/refuse",
            op("simRefuse", "Sim engine only: the server refuses the next sends [sessions:control]", "sessions",
                AUTH, sim_ack())
            .describe(&format!("The next `count` sends fail with WhatsApp error `code`; `count` 0 clears it. {SIM_ONLY}"))
            .params(id_param()).body("SimRefuse", true).errors(&BODY_ERRORS).errors(&[403, 404, 409])),
        ("get", "/api/v1/sessions/{id}/sim/outbox",
            op("simOutbox", "Sim engine only: everything the network received from the session [sessions:control]",
                "sessions", AUTH, ok("SimOutbox", "Messages, presence, read receipts and revokes, oldest first"))
            .describe(SIM_ONLY)
            .params(id_param()).errors(&[403, 404])),
        ("post", "/api/v1/sessions/{id}/messages",
            op("sendMessage", "Queue a message [messages:send]", "sessions", AUTH, queued(schema("Message")))
            .describe("A 202 means the message is committed to the session's send queue (status `queued`, or \
                `scheduled` with `sendAt`); the queue paces and sends it. Media is fetched or decoded now, so a \
                bad URL is a 400 here. With `Idempotency-Key`, the first answer is kept for 24 h and replayed \
                for the same request; another request under the same key is 409.")
            .params(send_key()).body("SendMessage", true).errors(&[400, 415, 403, 404])
            .response(409, r("responses", "IdempotencyConflict"))
            .response(413, r("responses", "MediaTooLarge"))
            .response(429, r("responses", "QueueFull"))),
        ("post", "/api/v1/sessions/{id}/messages/batch",
            op("sendMessageBatch", "Queue up to 1000 messages, all or nothing [messages:send]", "sessions", AUTH,
                queued(schema("QueuedMessages")))
            .describe("Each item is checked as a single send; the first bad item refuses the whole batch, and \
                its position is details.index. Nothing is queued unless everything is. Idempotency-Key works as \
                for a single send.")
            .params(send_key()).body("SendMessageBatch", true).errors(&[415, 403, 404])
            .response(400, err("Bad JSON, bad field or bad Idempotency-Key (invalid_request); details.field \
                names the field and, for one item, details.index its position in `messages`"))
            .response(409, r("responses", "IdempotencyConflict"))
            .response(413, r("responses", "MediaTooLarge"))
            .response(429, r("responses", "QueueFull"))),
        ("get", "/api/v1/sessions/{id}/messages",
            op("listMessages", "List a session's messages, both directions [messages:read]", "sessions", AUTH,
                ok("MessageList", "One page of messages, in id (creation) order"))
            .params([id_param(), list_params(&["chatId", "direction", "messageStatus"])].concat())
            .errors(&[400, 403, 404])),
        ("get", "/api/v1/sessions/{id}/messages/{msgId}",
            op("getMessage", "Get a message [messages:read]", "sessions", AUTH, ok("Message", "The message"))
            .params(msg_params()).errors(&[403, 404])),
        ("delete", "/api/v1/sessions/{id}/messages/{msgId}",
            op("deleteMessage", "Cancel a queued message, or revoke a sent one for everyone [messages:send]",
                "sessions", AUTH, ok("Message", "Canceled: the `scheduled` or `queued` message, now `canceled`"))
            .response(202, json_response("Revoke queued: the sent message, revoked for everyone once the queue \
                sends the revoke (then `revoked`)", schema("Message")))
            .params(msg_params()).errors(&[403, 404])
            .response(409, err("Neither cancelable nor revocable: inbound, already sending, failed, canceled, a \
                reaction, or a revoke already asked for (conflict; details.status)"))),
        ("get", "/api/v1/sessions/{id}/messages/{msgId}/media",
            op("getMessageMedia", "Download a message's media [messages:read]", "sessions", AUTH, (200, json!({
                "description": "The media's bytes, with its mimetype as Content-Type (application/octet-stream \
                    when the stored one is not a valid type)",
                "headers": {
                    "X-Content-Type-Options": {"schema": {"type": "string", "const": "nosniff"}},
                    "Content-Security-Policy": {"schema": {"type": "string", "const": "sandbox"}},
                    "Content-Disposition": {"description": "`attachment` (with filename and filename* when the \
                        name is known) unless the type is a plain raster image, audio or video", "schema": {"type": "string"}},
                },
                "content": {"*/*": {"schema": {"type": "string", "contentEncoding": "binary"}}},
            })))
            .describe("Outbound media is kept by the gateway; inbound media is fetched from WhatsApp on demand, \
                so it needs the session connected.")
            .params(msg_params()).errors(&[403])
            .response(404, err("No such message in the session, or the message has no media (not_found)"))
            .response(409, err("Inbound media while the session is not connected (conflict; details.status)"))
            .response(503, err("WhatsApp did not hand out the inbound media (unavailable)"))),
        ("get", "/api/v1/events",
            op("listEvents", "List this organization's events, oldest first, or stream them live [messages:read]",
                "sessions", AUTH, events_ok())
            .describe(&format!("A walk that reaches the end and later resumes from its cursor sees every event \
                committed meanwhile. {STREAM}"))
            .params(event_params(&["sessionId", "eventType"])).errors(&[400, 403])),
        ("get", "/api/v1/admin/events",
            op("adminListEvents", "List events across all organizations, or stream them live (super_admin)",
                "admin", AUTH, events_ok())
            .describe(STREAM)
            .params(event_params(&["organizationId", "sessionId", "eventType"])).errors(&[400, 403])),
    ]
}

/// How the event routes stream (CONTRACT §10).
const STREAM: &str = "With `Accept: text/event-stream` the answer is instead a live Server-Sent Events stream of \
    the events committed from now on (the same filters; `limit` and `cursor` do not apply): each event as \
    `id: <event id>`, `event: <type>`, `data: <the Event JSON>`, and a `: keepalive` comment every 15 s. \
    `Last-Event-ID` resumes right after that event, with nothing lost while it is retained. A reader that \
    stops reading is cut off after a few seconds and resumes with `Last-Event-ID`; streams end when the \
    gateway shuts down.";

/// The 200 of the event routes: a page as JSON, or the live stream.
fn events_ok() -> (u16, Value) {
    let mut ok = json_response("One page of events, in commit order (JSON), or the live stream \
        (`text/event-stream`)", schema("EventList"));
    ok["content"]["text/event-stream"] = json!({"schema": {"type": "string",
        "description": "Server-Sent Events: `id: evt_...`, `event: <type>`, `data: <Event JSON>` per event; \
            `: keepalive` comments"}});
    (200, ok)
}

/// The listing's parameters, then the stream's `Last-Event-ID`.
fn event_params(filters: &[&str]) -> Vec<Value> {
    let mut p = list_params(filters);
    p.push(r("parameters", "lastEventId"));
    p
}

/// `schema`, also accepting null.
fn nullable(mut schema: Value) -> Value {
    if let Some(t) = schema.get("type").cloned() {
        schema["type"] = json!([t, "null"]);
    }
    schema
}

/// The messaging component schemas.
pub(super) fn schemas() -> Map<String, Value> {
    let ts = json!({"type": "integer", "description": MILLIS});
    let ts_or_null = json!({"type": ["integer", "null"], "description": MILLIS});
    let string_or_null = json!({"type": ["string", "null"]});
    let jid = "A JID: `<digits>@s.whatsapp.net`, `<digits>@lid` or `<id>@g.us`";
    let message = object(
        &[
            "id", "sessionId", "organizationId", "direction", "chatId", "chatJid", "chatLid", "senderJid",
            "senderLid", "type", "text", "media", "location", "contact", "reaction", "replyTo", "mentions",
            "status", "error", "waMessageId", "sendAt", "createdAt", "updatedAt", "sentAt", "deliveredAt", "readAt",
        ],
        json!({
            "id": {"type": "string", "description": "ULID"},
            "sessionId": {"type": "string"}, "organizationId": {"type": "string"},
            "direction": string_enum(&["in", "out"]),
            "chatId": {"type": "string", "description": jid},
            "chatJid": {"type": ["string", "null"], "description": "The chat's phone-number form, when known"},
            "chatLid": {"type": ["string", "null"], "description": "The chat's @lid form, when known"},
            "senderJid": string_or_null, "senderLid": string_or_null,
            "type": string_enum(&message_types()),
            "text": {"type": ["string", "null"], "description": "The text, or the media's caption"},
            "media": nullable(object(&["mimetype", "fileName", "sizeBytes"], json!({
                "mimetype": {"type": "string"}, "fileName": string_or_null, "sizeBytes": {"type": "integer"},
            }))),
            "location": nullable(object(&["latitude", "longitude", "name", "address"], json!({
                "latitude": {"type": "number"}, "longitude": {"type": "number"},
                "name": string_or_null, "address": string_or_null,
            }))),
            "contact": nullable(object(&["name", "phoneNumber"], json!({
                "name": {"type": "string"}, "phoneNumber": string_or_null,
            }))),
            "reaction": nullable(object(&["messageId", "emoji"], json!({
                "messageId": {"type": ["string", "null"], "description": "Our id of the target, when we have it"},
                "emoji": {"type": "string", "description": "\"\" removes the reaction"},
            }))),
            "replyTo": {"type": ["string", "null"], "description": "Our id of the quoted message"},
            "mentions": {"type": "array", "items": {"type": "string"}},
            "status": string_enum(&message_statuses()),
            "error": nullable(object(&["code", "message"], json!({
                "code": {"type": "string"}, "message": {"type": "string"},
            }))),
            "waMessageId": {"type": "string", "description": "WhatsApp's id of the message"},
            "sendAt": ts_or_null, "createdAt": ts, "updatedAt": ts,
            "sentAt": ts_or_null, "deliveredAt": ts_or_null, "readAt": ts_or_null,
        }),
    );
    let mut send = object(&["to"], json!({
        "to": {"type": "string", "description": format!("Phone digits (6 to 20), or {jid}")},
        "type": {"type": "string", "enum": sendable_types(), "description": "Optional; must fit the body. \
            With media it may name another media type (e.g. sticker); by default it follows the body (media: \
            its mimetype)"},
        "text": {"type": "string", "maxLength": MAX_TEXT_CHARS, "description": "The text, or the media's caption"},
        "media": object(&[], json!({
            "url": {"type": "string", "description": "http(s), fetched now; public hosts only unless \
                --allow-private-urls (the host is read as a browser reads it: 2130706433, 0x7f.1 and localhost. \
                are loopback); redirects only to the same scheme, host and port"},
            "data": {"type": "string", "description": "base64, or a `data:<mime>;base64,` URL"},
            "mimetype": {"type": "string", "maxLength": 255, "description": "A valid type/subtype (RFC 6838), \
                optionally with `; name=value` parameters. Required unless the URL's response or the data URL \
                gives it"},
            "fileName": {"type": "string", "minLength": 1, "maxLength": 255, "description": "A plain name: no / or \\, \
                no control characters, not . or .."},
        })),
        "location": object(&["latitude", "longitude"], json!({
            "latitude": {"type": "number", "minimum": -90, "maximum": 90},
            "longitude": {"type": "number", "minimum": -180, "maximum": 180},
            "name": {"type": "string"}, "address": {"type": "string"},
        })),
        "contact": object(&["name", "phoneNumber"], json!({
            "name": {"type": "string", "minLength": 1},
            "phoneNumber": {"type": "string", "pattern": "^\\+?[0-9]{6,20}$"},
        })),
        "reaction": object(&["messageId", "emoji"], json!({
            "messageId": {"type": "string", "description": "Our id of a message of this session"},
            "emoji": {"type": "string", "description": "One emoji; \"\" removes the reaction"},
        })),
        "replyTo": {"type": "string", "description": "Our id of a message of this session, quoted"},
        "mentions": {"type": "array", "maxItems": 256, "items": {"type": "string"}, "description": "Phone digits \
            or JIDs"},
        "sendAt": {"type": "integer", "description": "Unix milliseconds, in the future and at most 30 days ahead: \
            the message waits as `scheduled`"},
    }));
    send["description"] = json!("Exactly one of text, media, location, contact, reaction; text may go with media \
        as its caption. Exactly one of media.url and media.data.");
    let mut event_types = EVENT_TYPES.to_vec();
    event_types.push(crate::store::webhook_records::WEBHOOK_TEST);
    let event_data = json!({
        "description": "session.status: the Session after the change; message.*: the Message after the change; \
            session.sending_paused: until when and why; webhook.test: the webhook tested",
        "oneOf": [
            schema("Session"),
            schema("Message"),
            object(&["until", "reason"], json!({
                "until": {"type": "integer", "description": MILLIS}, "reason": {"type": "string"},
            })),
            object(&["webhookId"], json!({"webhookId": {"type": "string", "description": "ULID"}})),
        ],
    });
    let outbox_entry = object(&["at", "kind", "chatId"], json!({
        "at": ts,
        "kind": string_enum(&["message", "presence", "receipt", "revoke"]),
        "chatId": {"type": "string"},
        "presence": {"type": "string", "enum": ["composing", "recording", "paused"], "description": "kind presence"},
        "waMessageId": {"type": "string", "description": "kind message, receipt (read) or revoke"},
        "type": {"type": "string", "enum": sendable_types(), "description": "kind message"},
        "text": {"type": ["string", "null"], "description": "kind message: the text, caption or reaction emoji"},
    }));
    let values = json!({
        "Message": message,
        "MessageList": list_of("Message"),
        "QueuedMessages": object(&["data"], json!({"data": {"type": "array", "items": schema("Message")}})),
        "SendMessage": send,
        "SendMessageBatch": object(&["messages"], json!({
            "messages": {"type": "array", "minItems": 1, "maxItems": MAX_BATCH, "items": schema("SendMessage")},
        })),
        "Event": object(&["id", "type", "timestamp", "organizationId", "sessionId", "data"], json!({
            "id": {"type": "string", "pattern": "^evt_", "description": "evt_ and a ULID; sorts in commit order"},
            "type": string_enum(&event_types),
            "timestamp": ts, "organizationId": {"type": "string"},
            "sessionId": string_or_null,
            "data": event_data,
        })),
        "EventList": list_of("Event"),
        "SimIncoming": object(&["from"], json!({
            "from": {"type": "string", "pattern": "^[0-9]{6,20}$", "description": "The sender's phone digits"},
            "text": {"type": "string", "description": "The text; the caption of media; the location's name; the \
                contact's name"},
            "lid": {"type": "string", "description": "The sender's LID (`@lid` optional): the message then comes \
                from the LID, with the phone number as its other form"},
            "type": {"type": "string", "enum": ["text", "image", "video", "audio", "document", "sticker",
                "location", "contact", "unsupported"], "default": "text"},
            "reaction": object(&["messageId", "emoji"], json!({
                "messageId": {"type": "string", "description": "Our id or the WhatsApp id of the target"},
                "emoji": {"type": "string"},
            })),
            "group": {"type": "string", "description": "A group (`@g.us` optional): the message arrives there"},
        })),
        "SimMessage": object(&["id"], json!({"id": {"type": "string", "description": "The waMessageId"}})),
        "SimReceipt": object(&["waMessageId", "status"], json!({
            "waMessageId": {"type": "string"}, "status": string_enum(&["delivered", "read"]),
        })),
        "SimRefuse": object(&["code"], json!({
            "code": {"type": "string", "minLength": 1, "maxLength": 32, "examples": ["463"],
                "description": "WhatsApp's error code"},
            "count": {"type": "integer", "minimum": 0, "default": 1},
            "retryAfterMs": {"type": "integer", "minimum": 0},
        })),
        "SimOutbox": object(&["data"], json!({"data": {"type": "array", "items": outbox_entry}})),
        "Empty": object(&[], json!({})),
    });
    values.as_object().cloned().unwrap_or_default()
}

/// The messaging error responses.
pub(super) fn responses() -> Map<String, Value> {
    let e = |d: &str| json_response(d, schema("Error"));
    let mut queue_full = e("The session's send queue is full (rate_limited; details.queued, \
        details.sessionStatus, details.retryAfterSeconds: for a session that is not working, the queue drains only \
        once it is started, and Retry-After is the time until its oldest queued message expires), or media that \
        would take the organization past its storage quota (rate_limited; details.quota: maxStoredBytes, \
        storedBytes, requestBytes; nothing is stored), or too much media is being received at once across all requests \
        (`--media-fetch-budget`; details.limit = \"media_budget\", details.budgetBytes), or too many \
        requests from this principal");
    queue_full["headers"] = json!({"Retry-After": {
        "description": "Seconds until a request will be accepted", "schema": {"type": "integer", "minimum": 1},
    }});
    let values = json!({
        "IdempotencyConflict": e("This Idempotency-Key was used with another request in the last 24 h (conflict)"),
        "MediaTooLarge": e("Media over 16 MiB (details.field, details.maxBytes), or a request body over the \
            route's limit: 24 MiB for one message, 32 MiB for a batch (payload_too_large)"),
        "QueueFull": queue_full,
    });
    values.as_object().cloned().unwrap_or_default()
}

/// The messaging parameters.
pub(super) fn parameters() -> Map<String, Value> {
    let q = |name: &str, description: &str, schema: Value| {
        json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
    };
    let values = json!({
        "msgId": {"name": "msgId", "in": "path", "required": true, "schema": {"type": "string"},
            "description": "The message's id (a ULID)"},
        "idempotencyKey": {"name": "Idempotency-Key", "in": "header", "required": false,
            "description": "Makes a retry safe: the first answer is kept for 24 h and replayed for the same \
                request",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"}},
        "chatId": q("chatId", "Only this chat's messages: phone digits or a JID", json!({"type": "string"})),
        "direction": q("direction", "Only inbound or only outbound messages", string_enum(&["in", "out"])),
        "messageStatus": q("status", "Only messages in this status", string_enum(&message_statuses())),
        "sessionId": q("sessionId", "Only this session's events", json!({"type": "string"})),
        "eventType": q("type", "Only events of this type", string_enum(&EVENT_TYPES)),
        "lastEventId": {"name": "Last-Event-ID", "in": "header", "required": false,
            "description": "The live stream only: resume right after this event id (`evt_...`)",
            "schema": {"type": "string", "pattern": "^(evt_)?[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}$"}},
    });
    values.as_object().cloned().unwrap_or_default()
}
