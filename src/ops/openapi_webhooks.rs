//! The webhook part of `/openapi.json` (CONTRACT §10): an organization's
//! endpoints, their secrets and rotation. Built with the helpers of
//! [`crate::ops::openapi`], merged into its document there.

use serde_json::{json, Map, Value};

use super::{id_param, json_response, list_of, list_params, object, op, schema, string_enum, Op, AUTH, BODY_ERRORS, MILLIS};
use crate::api::events::EVENT_TYPES;
use crate::api::webhooks::MAX_WEBHOOKS;

pub(super) fn operations() -> Vec<(&'static str, &'static str, Op)> {
    let ok = |name: &str, what: &str| (200, json_response(what, schema(name)));
    let created = |name: &str, what: &str| (201, json_response(what, schema(name)));
    vec![
        ("post", "/api/v1/webhooks",
            op("createWebhook", "Create a webhook endpoint [webhooks:write]", "webhooks", AUTH,
                created("WebhookCreated", "The endpoint; `secret` is shown only this once"))
            .describe(&format!("The URL must be https:// (http:// and private, loopback or link-local targets only \
                with --allow-private-urls; the host is read as a browser reads it, so 2130706433, 0x7f.0.0.1, \
                127.1 and localhost. are loopback, and a name resolving to such an address is refused here as at \
                delivery). At most {MAX_WEBHOOKS} per organization (409 `conflict` beyond)."))
            .body("CreateWebhook", true).errors(&BODY_ERRORS).errors(&[403, 409])),
        ("get", "/api/v1/webhooks",
            op("listWebhooks", "List this organization's webhooks [webhooks:write]", "webhooks", AUTH,
                ok("WebhookList", "One page of webhooks"))
            .params(list_params(&[])).errors(&[400, 403])),
        ("get", "/api/v1/webhooks/{id}",
            op("getWebhook", "One webhook [webhooks:write]", "webhooks", AUTH, ok("Webhook", "The webhook"))
            .params(id_param()).errors(&[403, 404])),
        ("patch", "/api/v1/webhooks/{id}",
            op("updateWebhook", "Change a webhook; enabling it clears disabledReason [webhooks:write]", "webhooks", AUTH,
                ok("Webhook", "The webhook"))
            .params(id_param()).body("PatchWebhook", true).errors(&BODY_ERRORS).errors(&[403, 404])),
        ("delete", "/api/v1/webhooks/{id}",
            op("deleteWebhook", "Delete a webhook [webhooks:write]", "webhooks", AUTH, (204, json!({"description": "Deleted"})))
            .params(id_param()).errors(&[403, 404])),
        ("post", "/api/v1/webhooks/{id}/rotate-secret",
            op("rotateWebhookSecret", "A new signing secret; the old one keeps signing beside it for 24 h [webhooks:write]",
                "webhooks", AUTH, ok("WebhookCreated", "The webhook and its new secret, shown only this once"))
            .params(id_param()).errors(&[403, 404])),
        ("get", "/api/v1/webhooks/{id}/deliveries",
            op("listWebhookDeliveries", "The delivery log: every attempt, oldest first [webhooks:write]", "webhooks", AUTH,
                ok("WebhookAttemptList", "One page of attempts"))
            .params({ let mut p = id_param(); p.extend(list_params(&[])); p }).errors(&[400, 403, 404])),
        ("post", "/api/v1/webhooks/{id}/replay",
            op("replayWebhook", "Deliver events again, with the same ids [webhooks:write]", "webhooks", AUTH,
                (202, json_response("How many deliveries were queued", schema("WebhookReplayed"))))
            .describe("Queues again the organization's events from `since` to `until` (Unix ms, inclusive) that this \
                webhook wants now, its own test events, and any whose delivery failed or waits for a retry; with `onlyFailed`, \
                only those whose delivery failed. Attempts start over. Never an event committed before the webhook was \
                created, and only the types the caller may read: message.* needs messages:read, session.* \
                sessions:read (webhook.test always).")
            .params(id_param()).body("ReplayWebhook", true).errors(&BODY_ERRORS).errors(&[403, 404])),
        ("post", "/api/v1/webhooks/{id}/test",
            op("testWebhook", "Send a webhook.test event to this webhook only [webhooks:write]", "webhooks", AUTH,
                (202, json_response("The test event was queued", schema("WebhookTestQueued"))))
            .params(id_param()).errors(&[403, 404])),
    ]
}

pub(super) fn schemas() -> Map<String, Value> {
    let ts = json!({"type": "integer", "description": MILLIS});
    let mut types: Vec<&str> = vec!["*"];
    types.extend(EVENT_TYPES);
    let events = json!({"type": "array", "minItems": 1, "items": string_enum(&types),
        "description": "Event types to deliver, or [\"*\"] for all"});
    let session_ids = json!({"type": "array", "items": {"type": "string"},
        "description": "Only these sessions' events (empty: every session)"});
    let url = json!({"type": "string", "maxLength": 2048});
    let description = json!({"type": ["string", "null"], "maxLength": 500});
    let ordering = json!({"type": "string", "enum": ["session", "none"], "default": "session",
        "description": "session: a session's events arrive in id order (a failed delivery holds back the later ones); \
            none: a failed delivery is retried without holding back the session's later events"});
    let mut m = Map::new();
    m.insert("Webhook".into(), object(
        &["id", "organizationId", "url", "events", "sessionIds", "description", "enabled", "disabledReason",
          "ordering", "createdAt", "updatedAt"],
        json!({
            "id": {"type": "string", "description": "ULID"}, "organizationId": {"type": "string"},
            "url": url, "events": events, "sessionIds": session_ids, "description": description,
            "enabled": {"type": "boolean"},
            "disabledReason": {"type": ["string", "null"], "description": "Why the gateway disabled it (410, days of failures)"},
            "ordering": ordering, "createdAt": ts, "updatedAt": ts,
        }),
    ));
    m.insert("WebhookList".into(), list_of("Webhook"));
    m.insert("WebhookCreated".into(), object(&["webhook", "secret"], json!({
        "webhook": schema("Webhook"),
        "secret": {"type": "string", "pattern": "^whsec_", "description": "The Standard Webhooks signing secret; returned only once"},
    })));
    m.insert("CreateWebhook".into(), object(&["url", "events"], json!({
        "url": url, "events": events, "sessionIds": session_ids, "description": description, "ordering": ordering,
    })));
    m.insert("WebhookAttempt".into(), object(
        &["eventId", "attempt", "at", "status", "error", "latencyMs", "response"],
        json!({
            "eventId": {"type": "string", "description": "evt_<ULID>: the webhook-id header"},
            "attempt": {"type": "integer", "minimum": 1},
            "at": ts,
            "status": {"type": ["integer", "null"], "description": "The HTTP status answered, if any"},
            "error": {"type": ["string", "null"], "description": "Timeout, refusal or network error, if any"},
            "latencyMs": {"type": "integer"},
            "response": {"type": "string", "description": "At most 1 KiB of the answer (lossy UTF-8)"},
        }),
    ));
    m.insert("WebhookAttemptList".into(), list_of("WebhookAttempt"));
    m.insert("ReplayWebhook".into(), object(&["since"], json!({
        "since": {"type": "integer", "minimum": 0, "description": MILLIS},
        "until": {"type": "integer", "description": MILLIS},
        "onlyFailed": {"type": "boolean"},
    })));
    m.insert("WebhookReplayed".into(), object(&["queued"], json!({"queued": {"type": "integer", "minimum": 0}})));
    m.insert("WebhookTestQueued".into(), object(&["eventId"], json!({"eventId": {"type": "string"}})));
    m.insert("PatchWebhook".into(), object(&[], json!({
        "url": url, "events": events, "sessionIds": session_ids, "description": description,
        "enabled": {"type": "boolean"}, "ordering": ordering,
    })));
    m
}
