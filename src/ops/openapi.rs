//! `GET /openapi.json`: the OpenAPI 3.1 document of every route in
//! [`crate::http::router::routes`], and nothing else.
//!
//! The document is built from small helpers (`Op`, `list_params`, the
//! schema builders) rather than one literal, so each operation reads as one
//! line of intent. `tests/openapi.rs` keeps it true: the (method, path) set
//! must equal the route table, every `$ref` must resolve, and real responses
//! must match the schemas. The messaging part (messages, events, the sim
//! engine's messaging hooks) is in `openapi_messages.rs`.

#[path = "openapi_messages.rs"]
mod messages;
#[path = "openapi_webhooks.rs"]
mod webhooks;
#[path = "openapi_contacts.rs"]
mod contacts;
#[path = "openapi_groups.rs"]
mod groups;

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::app::App;
use crate::http::response::{self, Resp};
use crate::http::{ApiError, Req};

/// Session statuses (CONTRACT §4).
const SESSION_STATUSES: [&str; 6] = ["stopped", "starting", "scan_qr_code", "working", "failed", "logged_out"];
/// Every permission; an api-key may carry all but `api_keys:write`.
const PERMISSIONS: [&str; 10] = [
    "sessions:read", "sessions:write", "sessions:control", "messages:send", "messages:read", "webhooks:write",
    "api_keys:write", "contacts:read", "groups:write", "chats:write",
];
/// The error envelope's codes (CONTRACT §3).
const ERROR_CODES: [&str; 12] = [
    "unauthorized", "forbidden", "not_found", "invalid_request", "invalid_cursor", "conflict", "method_not_allowed",
    "payload_too_large", "unsupported_media_type", "rate_limited", "internal", "unavailable",
];

const AUTH: bool = true;
const PUBLIC: bool = false;

/// A `$ref` to a component of `kind` (`schemas`, `responses`, `parameters`).
fn r(kind: &str, name: &str) -> Value {
    json!({ "$ref": format!("#/components/{kind}/{name}") })
}

fn schema(name: &str) -> Value {
    r("schemas", name)
}

/// A JSON response with a schema.
fn json_response(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

/// One operation, built step by step.
struct Op(Map<String, Value>);

/// Starts an operation: id, summary, tag, whether it needs a bearer token,
/// and its success response (`status`, response object).
fn op(id: &str, summary: &str, tag: &str, auth: bool, ok: (u16, Value)) -> Op {
    let security = if auth { json!([{"bearerAuth": []}]) } else { json!([]) };
    let m = json!({"operationId": id, "summary": summary, "tags": [tag], "security": security, "responses": {}});
    let op = Op(m.as_object().cloned().unwrap_or_default()).response(ok.0, ok.1);
    // Every authenticated operation can refuse the token, rate-limit the
    // caller (CONTRACT §11), and reads the store.
    if auth { op.errors(&[401, 429, 500]) } else { op }
}

impl Op {
    fn set(mut self, key: &str, value: Value) -> Op {
        self.0.insert(key.into(), value);
        self
    }

    fn describe(self, text: &str) -> Op {
        self.set("description", json!(text))
    }

    fn params(self, params: Vec<Value>) -> Op {
        self.set("parameters", Value::Array(params))
    }

    /// A JSON request body of component schema `name`.
    fn body(self, name: &str, required: bool) -> Op {
        self.set("requestBody", json!({"required": required, "content": {"application/json": {"schema": schema(name)}}}))
    }

    /// Adds a response.
    fn response(mut self, status: u16, response: Value) -> Op {
        if let Some(Value::Object(responses)) = self.0.get_mut("responses") {
            responses.insert(status.to_string(), response);
        }
        self
    }

    /// Adds the shared error responses for these statuses.
    fn errors(self, statuses: &[u16]) -> Op {
        statuses.iter().fold(self, |op, s| op.response(*s, r("responses", error_response_name(*s))))
    }
}

/// The component name of the shared response for an error status.
fn error_response_name(status: u16) -> &'static str {
    match status {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        413 => "PayloadTooLarge",
        415 => "UnsupportedMediaType",
        429 => "RateLimited",
        503 => "Unavailable",
        _ => "Internal",
    }
}

/// `limit` and `cursor`, then the list's filters (parameter component names).
fn list_params(extra: &[&str]) -> Vec<Value> {
    ["limit", "cursor"].iter().chain(extra).map(|p| r("parameters", p)).collect()
}

fn id_param() -> Vec<Value> {
    vec![r("parameters", "id")]
}

/// The statuses a JSON-body operation can add: bad body, too large, not JSON.
const BODY_ERRORS: [u16; 3] = [400, 413, 415];

/// Every operation, as (method, path, operation), in route-table order.
fn operations() -> Vec<(&'static str, &'static str, Op)> {
    let mut ops = sessions_operations();
    ops.extend(messages::operations());
    ops.extend(webhooks::operations());
    ops.extend(contacts::operations());
    ops.extend(groups::operations());
    ops.extend(key_and_ops_operations());
    ops
}

/// The admin and session operations, up to the sim engine's messaging hooks.
fn sessions_operations() -> Vec<(&'static str, &'static str, Op)> {
    let ok = |name: &str, what: &str| (200, json_response(what, schema(name)));
    let created = |name: &str, what: &str| (201, json_response(what, schema(name)));
    let gone = |what: &str| (204, json!({"description": what}));
    vec![
        ("get", "/api/v1/admin/sessions",
            op("adminListSessions", "List sessions across all organizations (super_admin)", "admin", AUTH,
                ok("SessionList", "One page of sessions, in id order"))
            .describe("List WhatsApp sessions across every organization, for platform oversight. Restricted to a \
                platform super_admin login JWT; api-keys and org roles get 403 `forbidden`. Read-only.")
            .params(list_params(&["organizationId", "status", "gatewayId"])).errors(&[400, 403])),
        ("post", "/api/v1/admin/sessions",
            op("adminCreateSession", "Create a session in any organization (super_admin)", "admin", AUTH,
                created("Session", "The new session, with isAdminSession true"))
            .describe("The organization is created on first sight. Only a super_admin may change or delete it later.")
            .body("AdminCreateSession", true).errors(&BODY_ERRORS).errors(&[403, 409])),
        ("get", "/api/v1/admin/organizations",
            op("adminListOrganizations", "List organizations (super_admin)", "admin", AUTH,
                ok("OrganizationList", "One page of organizations, in id order"))
            .params(list_params(&[])).errors(&[400, 403])),
        ("post", "/api/v1/admin/organizations",
            op("adminCreateOrganization", "Create an organization (super_admin)", "admin", AUTH,
                created("Organization", "The new organization"))
            .body("CreateOrganization", false).errors(&BODY_ERRORS).errors(&[403, 409])),
        ("patch", "/api/v1/admin/organizations/{id}",
            op("adminUpdateOrganization", "Update or suspend an organization (super_admin)", "admin", AUTH,
                ok("Organization", "The updated organization"))
            .describe("A suspended organization's api-keys and members get 403 `forbidden` on every route, `/me` \
                included. Suspending stops the organization's running sessions; they stay stopped across gateway \
                restarts, and setting `active` again starts the ones the suspension stopped.")
            .params(id_param()).body("PatchOrganization", false).errors(&BODY_ERRORS).errors(&[403, 404])),
        ("post", "/api/v1/admin/sessions/{id}/start",
            op("adminStartSession", "Start any organization's session (super_admin)", "admin", AUTH,
                ok("Session", "The session, now starting"))
            .params(id_param()).errors(&[403, 404, 409])),
        ("post", "/api/v1/admin/sessions/{id}/stop",
            op("adminStopSession", "Stop any organization's session (super_admin)", "admin", AUTH,
                ok("Session", "The stopped session"))
            .params(id_param()).errors(&[403, 404, 409])),
        ("post", "/api/v1/admin/backup",
            op("adminBackup", "Snapshot the data file into data/backups/ (super_admin)", "admin", AUTH,
                created("Backup", "The snapshot written"))
            .errors(&[403, 409])),
        ("get", "/api/v1/sessions",
            op("listSessions", "List this organization's sessions [sessions:read]", "sessions", AUTH,
                ok("SessionList", "One page of sessions, in id order"))
            .params(list_params(&["status"])).errors(&[400, 403])),
        ("post", "/api/v1/sessions",
            op("createSession", "Create a session [sessions:write]", "sessions", AUTH,
                created("Session", "The new, stopped session"))
            .body("CreateSession", false).errors(&BODY_ERRORS).errors(&[403, 409])),
        ("get", "/api/v1/sessions/{id}",
            op("getSession", "Get a session [sessions:read]", "sessions", AUTH, ok("Session", "The session"))
            .params(id_param()).errors(&[403, 404])),
        ("patch", "/api/v1/sessions/{id}",
            op("updateSession", "Update a session [sessions:write]", "sessions", AUTH,
                ok("Session", "The updated session"))
            .params(id_param()).body("PatchSession", false).errors(&BODY_ERRORS).errors(&[403, 404])),
        ("delete", "/api/v1/sessions/{id}",
            op("deleteSession", "Delete a session [sessions:write]", "sessions", AUTH, gone("Deleted"))
            .params(id_param()).errors(&[403, 404])),
        ("post", "/api/v1/sessions/{id}/start",
            op("startSession", "Start a session [sessions:control]", "sessions", AUTH,
                ok("Session", "The session, now starting"))
            .describe("409 `conflict` (with `details.status`) when it is already running.")
            .params(id_param()).errors(&[403, 404, 409])),
        ("post", "/api/v1/sessions/{id}/stop",
            op("stopSession", "Stop a session; credentials stay [sessions:control]", "sessions", AUTH,
                ok("Session", "The stopped session"))
            .describe("Works at any moment, also while reconnecting. 409 when it is not running.")
            .params(id_param()).errors(&[403, 404, 409])),
        ("post", "/api/v1/sessions/{id}/restart",
            op("restartSession", "Stop (if running) and start again [sessions:control]", "sessions", AUTH,
                ok("Session", "The session, starting"))
            .params(id_param()).errors(&[403, 404])),
        ("post", "/api/v1/sessions/{id}/logout",
            op("logoutSession", "Unlink the phone and wipe the credentials [sessions:control]", "sessions", AUTH,
                ok("Session", "The session, logged_out"))
            .params(id_param()).errors(&[403, 404, 409])),
        ("get", "/api/v1/sessions/{id}/qr",
            op("getSessionQr", "The QR code to scan [sessions:control]", "sessions", AUTH, (200, json!({
                "description": "The QR value and its expiry; a PNG image with `Accept: image/png`",
                "content": {
                    "application/json": {"schema": schema("Qr")},
                    "image/png": {"schema": {"type": "string", "contentEncoding": "binary"}},
                },
            })))
            .describe("409 `conflict` unless the session is `scan_qr_code`.")
            .params(id_param()).errors(&[403, 404, 409])),
        ("post", "/api/v1/sessions/{id}/pair-code",
            op("requestPairCode", "Link by pairing code instead of QR [sessions:control]", "sessions", AUTH,
                ok("PairCode", "The code to type on the phone"))
            .params(id_param()).body("PairCodeRequest", true).errors(&BODY_ERRORS).errors(&[403, 404, 409])),
        ("post", "/api/v1/sessions/{id}/sim/pair",
            op("simPair", "Sim engine only: the phone scans the QR [sessions:control]", "sessions", AUTH,
                ok("SimPaired", "The linked JID and LID"))
            .describe("404 unless the gateway runs `--engine sim`.")
            .params(id_param()).body("PairCodeRequest", true).errors(&BODY_ERRORS).errors(&[403, 404, 409])),
        ("post", "/api/v1/sessions/{id}/sim/disconnect",
            op("simDisconnect", "Sim engine only: drop the connection [sessions:control]", "sessions", AUTH,
                gone("Dropped; the gateway reconnects"))
            .params(id_param()).errors(&[403, 404, 409])),
        ("post", "/api/v1/sessions/{id}/sim/logout",
            op("simLogout", "Sim engine only: the phone unlinks the device [sessions:control]", "sessions", AUTH,
                gone("Unlinked"))
            .params(id_param()).errors(&[403, 404, 409])),
        ("post", "/api/v1/sessions/{id}/sim/incoming",
            op("simIncoming", "Sim engine only: a message arrives [sessions:control]", "sessions", AUTH,
                (202, json_response("Accepted", schema("SimMessage"))))
            .describe("A text by default; `type` makes it media (with sim bytes), a location or a contact, \
                `reaction` a reaction, `group` a group message, `lid` a message from a LID. 409 `conflict` \
                unless the session is linked and running. 404 unless the gateway runs `--engine sim`. \
                202 only once the message is stored, or held in memory while writes are refused (then \
                stored when they work); 503 `unavailable` if it could not be either (send it again).")
            .params(id_param()).body("SimIncoming", true).errors(&BODY_ERRORS).errors(&[403, 404, 409, 503])),
    ]
}

/// The api-key, caller and operational operations.
fn key_and_ops_operations() -> Vec<(&'static str, &'static str, Op)> {
    let ok = |name: &str, what: &str| (200, json_response(what, schema(name)));
    let created = |name: &str, what: &str| (201, json_response(what, schema(name)));
    let gone = |what: &str| (204, json!({"description": what}));
    vec![
        ("post", "/api/v1/api-keys",
            op("createApiKey", "Create an api-key [api_keys:write, login JWT only]", "api-keys", AUTH,
                created("ApiKeyCreated", "The key; `key` is shown only this once"))
            .body("CreateApiKey", true).errors(&BODY_ERRORS).errors(&[403])),
        ("get", "/api/v1/api-keys",
            op("listApiKeys", "List this organization's api-keys [api_keys:write]", "api-keys", AUTH,
                ok("ApiKeyList", "One page of api-keys, revoked ones included"))
            .params(list_params(&[])).errors(&[400, 403])),
        ("delete", "/api/v1/api-keys/{id}",
            op("revokeApiKey", "Revoke an api-key (idempotent) [api_keys:write]", "api-keys", AUTH,
                gone("Revoked"))
            .params(id_param()).errors(&[403, 404])),
        ("get", "/api/v1/me",
            op("getMe", "Who the token says the caller is", "me", AUTH, ok("Me", "The caller"))),
        ("get", "/healthz",
            op("healthz", "Liveness, and whether the data file can be written", "ops", PUBLIC,
                ok("Health", "The process answers")).errors(&[503])),
        ("get", "/readyz",
            op("readyz", "Readiness: store open, login keys loaded", "ops", PUBLIC, ok("Ready", "Ready"))
            .errors(&[503])),
        ("get", "/metrics",
            op("metrics", "Prometheus metrics", "ops", PUBLIC, (200, json!({
                "description": "Prometheus text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            })))),
        ("get", "/openapi.json",
            op("openapi", "This document", "ops", PUBLIC, (200, json_response("OpenAPI 3.1", json!({"type": "object"}))))),
        ("get", "/.well-known/jwks.json",
            op("jwks", "The embedded issuer's public keys", "ops", PUBLIC, ok("Jwks", "A JWK set"))
            .response(404, json_response("The embedded issuer is off (--jwks-url is set)", schema("Error")))),
        ("get", "/console",
            console_op("console", "The web console (not an API route)", json!({"text/html": {"schema": {"type": "string"}}}))
            .describe("A single-page console embedded in the binary: sign in with a login JWT or an api-key                 (kept in the browser's sessionStorage), then it uses the API above. Served under a strict                 Content-Security-Policy. `wa-gateway console` prints a ready link.")),
        ("get", "/console/{id}",
            console_op("consoleFile", "One file of the web console, by name (not an API route)", json!({
                "text/html": {"schema": {"type": "string"}},
                "text/css": {"schema": {"type": "string"}},
                "text/javascript": {"schema": {"type": "string"}},
            }))
            .params(vec![json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"},
                "description": "The file name, e.g. `app.js`; only the console's own embedded files exist"})])
            .errors(&[404])),
        ("get", "/docs",
            console_op("docs", "This document, rendered for reading (not an API route)", json!({"text/html": {"schema": {"type": "string"}}}))),
    ]
}

/// A console or docs page: public, HTML/CSS/JS, revalidated with its ETag.
fn console_op(id: &str, summary: &str, content: Value) -> Op {
    op(id, summary, "ops", PUBLIC, (200, json!({"description": "The file", "content": content})))
        .set("x-non-api", json!(true))
        .response(304, json!({"description": "Not modified (If-None-Match matched the ETag)"}))
}

/// An object schema: `required` names, `properties`, no other members.
fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "additionalProperties": false, "required": required, "properties": properties})
}

fn string_enum(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values})
}

fn list_of(item: &str) -> Value {
    object(
        &["data", "nextCursor"],
        json!({
            "data": {"type": "array", "items": schema(item)},
            "nextCursor": {"type": ["string", "null"], "description": "Opaque; null on the last page"},
        }),
    )
}

const MILLIS: &str = "Unix milliseconds";

/// The writable session fields shared by both create bodies and the patch.
fn session_inputs(nullable_phone: bool) -> Map<String, Value> {
    let phone = if nullable_phone { json!(["string", "null"]) } else { json!("string") };
    let rate = |d: u32| json!({"type": "integer", "minimum": 1, "maximum": 100_000, "default": d});
    let props = json!({
        "label": {"type": "string", "maxLength": 128},
        "phoneNumber": {"type": phone, "pattern": "^[0-9]{6,20}$", "description": "Digits only"},
        "autoRead": {"type": "boolean", "default": false},
        "presenceTyping": {"type": "boolean", "default": true},
        "ratePerMin": rate(20),
        "ratePerHour": rate(600),
    });
    props.as_object().cloned().unwrap_or_default()
}

fn schemas() -> Value {
    let ts = json!({"type": "integer", "description": MILLIS});
    let ts_or_null = json!({"type": ["integer", "null"], "description": MILLIS});
    let string_or_null = json!({"type": ["string", "null"]});
    let session = object(
        &[
            "id", "organizationId", "createdByUserId", "gatewayId", "label", "phoneNumber", "status",
            "autoRead", "presenceTyping", "ratePerMin", "ratePerHour", "isAdminSession", "waJid", "waLid",
            "lastConnectedAt", "createdAt", "updatedAt",
        ],
        json!({
            "id": {"type": "string", "description": "ULID"}, "organizationId": {"type": "string"},
            "createdByUserId": {"type": "string", "description": "JWT sub, or the user who created the api-key"},
            "gatewayId": {"type": "string"}, "label": {"type": "string"},
            "phoneNumber": {"type": ["string", "null"], "description": "Digits only"},
            "status": string_enum(&SESSION_STATUSES),
            "autoRead": {"type": "boolean"}, "presenceTyping": {"type": "boolean"},
            "ratePerMin": {"type": "integer"}, "ratePerHour": {"type": "integer"},
            "isAdminSession": {"type": "boolean"}, "waJid": string_or_null, "waLid": string_or_null,
            "lastConnectedAt": ts_or_null, "createdAt": ts, "updatedAt": ts,
            "lastError": {"type": "string", "description": "Why the session is `failed` (retries exhausted) or `logged_out` (unlinked by WhatsApp); present only on such a session"},
        }),
    );
    let mut create = session_inputs(false);
    create.insert("start".into(), json!({"type": "boolean", "description": "Start the session right away. Default: true when the caller holds sessions:control, else false; true without sessions:control is 403"}));
    let mut admin_create = create.clone();
    admin_create.insert("organizationId".into(), json!({"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,128}$"}));
    admin_create.insert("start".into(), json!({"type": "boolean", "description": "Start the session right away (default true)"}));
    let org_status = string_enum(&["active", "suspended"]);
    let name = json!({"type": "string", "minLength": 1, "maxLength": 128});
    let key_perms: Vec<&str> = PERMISSIONS.iter().copied().filter(|p| *p != "api_keys:write").collect();
    let key_permissions = json!({"type": "array", "items": string_enum(&key_perms)});
    json!({
        "Session": session,
        "SessionList": list_of("Session"),
        "Organization": object(&["id", "name", "status", "maxSessions", "maxStoredBytes", "storedBytes", "createdAt", "updatedAt"], json!({
            "id": {"type": "string"}, "name": {"type": "string"}, "status": org_status,
            "maxSessions": {"type": ["integer", "null"], "description": "null = unlimited"},
            "maxStoredBytes": {"type": ["integer", "null"], "minimum": 0, "description": "Cap on the bytes of stored \
                media (decoded) and message text; a send with media past it is 429. null = the gateway's \
                --org-storage-quota (default unlimited)"},
            "storedBytes": {"type": "integer", "minimum": 0, "description": "Bytes stored now: kept media (decoded, an \
                outbound message's until it has left) plus the UTF-8 length of every stored message's text"},
            "createdAt": ts, "updatedAt": ts,
        })),
        "OrganizationList": list_of("Organization"),
        "ApiKey": object(
            &["id", "organizationId", "name", "prefix", "permissions", "createdByUserId", "createdAt",
              "lastUsedAt", "expiresAt", "revokedAt"],
            json!({
                "id": {"type": "string", "description": "ULID"}, "organizationId": {"type": "string"},
                "name": {"type": "string"},
                "prefix": {"type": "string", "description": "The key's first 12 characters"},
                "permissions": key_permissions, "createdByUserId": {"type": "string"}, "createdAt": ts,
                "lastUsedAt": ts_or_null, "expiresAt": ts_or_null, "revokedAt": ts_or_null,
            }),
        ),
        "ApiKeyList": list_of("ApiKey"),
        "ApiKeyCreated": object(&["apiKey", "key"], json!({
            "apiKey": schema("ApiKey"),
            "key": {"type": "string", "pattern": "^wa_", "description": "The secret; returned only once"},
        })),
        "CreateSession": object(&[], Value::Object(create)),
        "AdminCreateSession": object(&["organizationId"], Value::Object(admin_create)),
        "PatchSession": object(&[], Value::Object(session_inputs(true))),
        "CreateOrganization": object(&[], json!({
            "id": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,128}$", "description": "Default org_<ULID>"},
            "name": name, "status": org_status,
            "maxSessions": {"type": "integer", "minimum": 0},
            "maxStoredBytes": {"type": ["integer", "null"], "minimum": 0, "description": "null = --org-storage-quota"},
        })),
        "PatchOrganization": object(&[], json!({
            "name": name, "status": org_status,
            "maxSessions": {"type": ["integer", "null"], "minimum": 0, "description": "null = unlimited"},
            "maxStoredBytes": {"type": ["integer", "null"], "minimum": 0, "description": "null = --org-storage-quota"},
        })),
        "CreateApiKey": object(&["name"], json!({
            "name": name,
            "permissions": {"type": "array", "items": string_enum(&key_perms), "default": key_perms},
            "expiresAt": {"type": "integer", "description": "Unix milliseconds, in the future"},
        })),
        "Me": object(&["kind", "userId", "organizationId", "role", "platformRole", "permissions"], json!({
            "kind": string_enum(&["user", "api_key"]),
            "apiKeyId": {"type": "string", "description": "Present for an api-key"},
            "userId": {"type": "string"},
            "organizationId": string_or_null,
            "role": {"type": ["string", "null"], "enum": ["owner", "admin", "member", null]},
            "platformRole": {"type": ["string", "null"], "enum": ["super_admin", null]},
            "permissions": {"type": "array", "items": string_enum(&PERMISSIONS)},
        })),
        "Qr": object(&["value", "expiresAt"], json!({
            "value": {"type": "string", "description": "The text the QR encodes"},
            "expiresAt": {"type": "integer", "description": MILLIS},
        })),
        "PairCodeRequest": object(&["phoneNumber"], json!({
            "phoneNumber": {"type": "string", "pattern": "^[0-9]{6,20}$"},
        })),
        "PairCode": object(&["code"], json!({"code": {"type": "string", "examples": ["ABCD-EFGH"]}})),
        "SimPaired": object(&["waJid", "waLid"], json!({"waJid": {"type": "string"}, "waLid": {"type": "string"}})),
        "Backup": object(&["file", "path", "sizeBytes", "sessions", "createdAt"], json!({
            "file": {"type": "string"}, "path": {"type": "string"},
            "sizeBytes": {"type": "integer"}, "sessions": {"type": "integer"}, "createdAt": ts,
        })),
        "Health": object(&["status", "store"], json!({
            "status": string_enum(&["ok", "degraded"]),
            "store": object(&["writable", "freeBytes", "minFreeBytes", "error"], json!({
                "writable": {"type": "boolean", "description": "false while writes are refused (503): below --min-free-disk, or after an I/O error until space is back"},
                "freeBytes": {"type": ["integer", "null"]},
                "minFreeBytes": {"type": "integer"},
                "error": {"type": ["string", "null"], "description": "why writes are refused since a write failed with an I/O error; cleared once they work again (the gateway reopens the file by itself)"},
            })),
        })),
        "Ready": object(&["status", "store", "jwksKeys"], json!({
            "status": string_enum(&["ready"]), "store": {"type": "string"}, "jwksKeys": {"type": "integer"},
        })),
        "Jwks": {"type": "object", "required": ["keys"], "properties": {
            "keys": {"type": "array", "items": {"type": "object"}},
        }},
        "Error": object(&["error"], json!({"error": object(&["code", "message", "details"], json!({
            "code": string_enum(&ERROR_CODES),
            "message": {"type": "string"},
            "details": {"type": "object", "description": "Names the field for invalid_request; may be {}"},
        }))})),
    })
}

fn error_responses() -> Value {
    let e = |d: &str| json_response(d, schema("Error"));
    let mut unauthorized = e("Missing, malformed or invalid token (unauthorized)");
    unauthorized["headers"] = json!({"WWW-Authenticate": {
        "description": "Bearer challenge", "schema": {"type": "string", "example": "Bearer realm=\"wa-gateway\""},
    }});
    let mut rate_limited = e("Too many requests from this principal, or too many failed authentications from \
        this address (rate_limited)");
    rate_limited["headers"] = json!({"Retry-After": {
        "description": "Seconds until a request will be accepted", "schema": {"type": "integer", "minimum": 1},
    }});
    json!({
        "BadRequest": e("Bad JSON, unknown or bad field, bad query parameter (invalid_request), or bad cursor \
            (invalid_cursor); details.field names the culprit"),
        "Unauthorized": unauthorized,
        "Forbidden": e("Authenticated but not allowed: missing permission, wrong kind of token, or suspended \
            organization (forbidden)"),
        "NotFound": e("No such object in the caller's organization (not_found)"),
        "Conflict": e("Conflicts with the current state, e.g. an organization's session limit (conflict)"),
        "PayloadTooLarge": e("Request body over 1 MiB (payload_too_large); message sends have their own limits"),
        "UnsupportedMediaType": e("Request body is not application/json (unsupported_media_type)"),
        "Unavailable": e("Not ready, or (for writes) the data disk is below --min-free-disk; reads keep \
            working (unavailable)"),
        "RateLimited": rate_limited,
        "Internal": e("Internal error; details.requestId identifies it in the log (internal)"),
    })
}

fn parameters() -> Value {
    let q = |name: &str, description: &str, schema: Value| {
        json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
    };
    json!({
        "id": {"name": "id", "in": "path", "required": true, "schema": {"type": "string"},
            "description": "The object's id (a ULID for sessions and api-keys)"},
        "limit": q("limit", "Page size", json!({"type": "integer", "minimum": 1, "maximum": 200, "default": 50})),
        "cursor": q("cursor", "nextCursor from the previous page of the same list and filters",
            json!({"type": "string"})),
        "status": q("status", "Only sessions in this status", string_enum(&SESSION_STATUSES)),
        "organizationId": q("organizationId", "Only this organization's sessions (or events)", json!({"type": "string"})),
        "gatewayId": q("gatewayId", "Only sessions on this gateway node", json!({"type": "string"})),
    })
}

/// `base` (an object) with the members of `more` added.
fn merged(mut base: Value, more: Map<String, Value>) -> Value {
    if let Value::Object(m) = &mut base {
        m.extend(more);
    }
    base
}

/// The OpenAPI 3.1 document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for (method, path, op) in operations() {
        // Every write can be refused while the data disk is nearly full.
        let writes = method != "get" && op.0.get("security").is_some_and(|s| s != &json!([]));
        let op = if writes { op.errors(&[503]) } else { op };
        if let Value::Object(item) = paths.entry(path).or_insert_with(|| json!({})) {
            item.insert(method.to_string(), Value::Object(op.0));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "wa-gateway",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Self-hosted, multi-tenant WhatsApp gateway. Errors are always \
                {\"error\": {\"code\", \"message\", \"details\"}}; lists are {\"data\", \"nextCursor\"}.",
        },
        "tags": [
            {"name": "admin", "description": "Platform oversight; super_admin login JWT only"},
            {"name": "sessions", "description": "An organization's WhatsApp sessions, their messages, and its \
                event log"},
            {"name": "webhooks", "description": "Signed deliveries of an organization's events"},
            {"name": "api-keys", "description": "Keys for scripts and services"},
            {"name": "me", "description": "The caller"},
            {"name": "ops", "description": "Health, readiness, metrics, this document, and the web console (non-API routes); no auth"},
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "Authorization: Bearer <token>. Either a login JWT for a person (minted by the \
                    frontend or the embedded issuer; org, role and platform role come from its claims), or an \
                    api-key for a script or service (starts with `wa_`, carries a fixed set of permissions). \
                    bearerFormat JWT describes the person-login case.",
            }},
            "schemas": merged(
                merged(merged(merged(schemas(), messages::schemas()), webhooks::schemas()), contacts::schemas()),
                groups::schemas()
            ),
            "responses": merged(error_responses(), messages::responses()),
            "parameters": merged(parameters(), messages::parameters()),
        },
    })
}

/// `GET /openapi.json`: the document, serialized once.
pub async fn serve(_app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    static BODY: OnceLock<Bytes> = OnceLock::new();
    let body = BODY.get_or_init(|| Bytes::from(serde_json::to_vec(&document()).unwrap_or_default()));
    Ok(response::bytes(200, "application/json", body.clone()))
}
