//! The groups part of `/openapi.json` (CONTRACT §13). Built with the helpers of
//! [`crate::ops::openapi`], merged into its document there.

use serde_json::{json, Map, Value};

use super::{id_param, json_response, list_of, list_params, object, op, schema, string_enum, Op, AUTH, BODY_ERRORS, MILLIS};

/// `{id}` and `{groupId}` (inline: the second segment is the groups' own).
fn group_params() -> Vec<Value> {
    let mut p = id_param();
    p.push(json!({"name": "groupId", "in": "path", "required": true,
        "description": "A group id (`…@g.us`, `@` may be written %40); a person's address here is 400",
        "schema": {"type": "string"}}));
    p
}

const NETWORK: &str = "Needs the WhatsApp connection: 409 `conflict` unless the session is `working`. \
    An unknown group (one the data file does not know) is 404 before the network is asked.";

pub(super) fn operations() -> Vec<(&'static str, &'static str, Op)> {
    let ok = |name: &str, what: &str| (200, json_response(what, schema(name)));
    vec![
        ("post", "/api/v1/sessions/{id}/sim/group-event",
            op("simGroupEvent", "Sim engine only: someone else changes a group [sessions:control]", "sessions", AUTH,
                (202, json_response("The notification was sent; its effect is applied shortly after", schema("SimGroupEventAccepted"))))
            .describe("`created`: the session's number is put in a new group by `by` (with `participants`); \
                `add`/`remove` of the session's own number tell it group.joined/group.left. 404 unless the gateway \
                runs `--engine sim`, or for a group the simulated network does not have.")
            .params(id_param()).body("SimGroupEvent", true).errors(&BODY_ERRORS).errors(&[403, 404, 409])),
        ("get", "/api/v1/sessions/{id}/groups",
            op("listGroups", "The groups the number is in, from the data file [contacts:read]", "sessions", AUTH,
                ok("GroupList", "One page of groups, in id order"))
            .params({ let mut p = id_param(); p.extend(list_params(&[])); p }).errors(&[400, 403, 404])),
        ("post", "/api/v1/sessions/{id}/groups",
            op("createGroup", "Create a group [groups:write]", "sessions", AUTH,
                (201, json_response("The group and how each participant fared", schema("GroupCreated"))))
            .describe("Each participant added spends one unit of the session's lookup budget (429 beyond). \
                The session's own number is the group's superadmin. A group.joined event is committed with the group.")
            .params(id_param()).body("CreateGroup", true).errors(&BODY_ERRORS).errors(&[403, 404, 409, 503])),
        ("post", "/api/v1/sessions/{id}/groups/join",
            op("joinGroup", "Join a group by invite code or link [groups:write]", "sessions", AUTH, ok("Group", "The group joined"))
            .describe("202 `{\"status\": \"requested\"}` when the group approves new members. A void code is 404.")
            .response(202, json_response("A request to join waits for an admin", schema("JoinRequested")))
            .params(id_param()).body("JoinGroup", true).errors(&BODY_ERRORS).errors(&[403, 404, 409, 503])),
        ("get", "/api/v1/sessions/{id}/groups/invite/{code}",
            op("previewGroupInvite", "The group an invite code leads to, without joining [contacts:read]", "sessions", AUTH,
                ok("Group", "The group as far as WhatsApp tells before joining"))
            .params({
                let mut p = id_param();
                p.push(json!({"name": "code", "in": "path", "required": true, "description": "An invite code (16 to 32 letters and digits)", "schema": {"type": "string"}}));
                p
            }).errors(&[400, 403, 404, 409, 503])),
        ("get", "/api/v1/sessions/{id}/groups/{groupId}",
            op("getGroup", "A group, from the data file [contacts:read]", "sessions", AUTH, ok("Group", "The group"))
            .describe("`?refresh=true` asks WhatsApp first (409 unless `working`) and stores its answer.")
            .params({
                let mut p = group_params();
                p.push(json!({"name": "refresh", "in": "query", "required": false, "schema": {"type": "boolean"}}));
                p
            }).errors(&[400, 403, 404, 409, 503])),
        ("patch", "/api/v1/sessions/{id}/groups/{groupId}",
            op("updateGroup", "Change a group's subject, description or settings [groups:write]", "sessions", AUTH, ok("Group", "The group"))
            .describe(NETWORK).params(group_params()).body("PatchGroup", true).errors(&BODY_ERRORS).errors(&[403, 404, 409, 503])),
        ("delete", "/api/v1/sessions/{id}/groups/{groupId}",
            op("leaveGroup", "Leave a group [groups:write]", "sessions", AUTH, (204, json!({"description": "Left"})))
            .describe(NETWORK).params(group_params()).errors(&[400, 403, 404, 409, 503])),
        ("post", "/api/v1/sessions/{id}/groups/{groupId}/participants",
            op("changeGroupParticipants", "Add, remove, promote or demote participants [groups:write]", "sessions", AUTH,
                ok("ParticipantResults", "How each participant fared, in the order given"))
            .describe("Adds spend the lookup budget, one unit each. With `invite`, people whose privacy refuses the add \
                get the group's invite as a message.")
            .params(group_params()).body("ChangeParticipants", true).errors(&BODY_ERRORS).errors(&[403, 404, 409, 503])),
        ("get", "/api/v1/sessions/{id}/groups/{groupId}/invite",
            op("getGroupInvite", "The group's invite link [groups:write]", "sessions", AUTH, ok("GroupInvite", "The invite code and link"))
            .describe(NETWORK).params(group_params()).errors(&[400, 403, 404, 409, 503])),
        ("post", "/api/v1/sessions/{id}/groups/{groupId}/invite/revoke",
            op("revokeGroupInvite", "Void the invite link and make a new one [groups:write]", "sessions", AUTH,
                ok("GroupInvite", "The new invite code and link"))
            .describe(NETWORK).params(group_params()).errors(&[400, 403, 404, 409, 503])),
        ("get", "/api/v1/sessions/{id}/groups/{groupId}/requests",
            op("listGroupRequests", "People waiting for approval to join [groups:write]", "sessions", AUTH,
                ok("GroupRequestList", "The requests"))
            .describe(NETWORK).params(group_params()).errors(&[400, 403, 404, 409, 503])),
        ("post", "/api/v1/sessions/{id}/groups/{groupId}/requests",
            op("answerGroupRequests", "Approve or reject people waiting to join [groups:write]", "sessions", AUTH,
                ok("ParticipantResults", "How each request fared"))
            .describe(NETWORK).params(group_params()).body("AnswerRequests", true).errors(&BODY_ERRORS).errors(&[403, 404, 409, 503])),
        ("put", "/api/v1/sessions/{id}/groups/{groupId}/picture",
            op("setGroupPicture", "Set the group's picture [groups:write]", "sessions", AUTH, ok("Group", "The group"))
            .describe("The body is the image itself, `image/jpeg` or `image/png`, at most 5 MiB; its first bytes must \
                be that format's signature (400 otherwise, 415 for another type).")
            .set("requestBody", json!({"required": true, "content": {
                "image/jpeg": {"schema": {"type": "string", "contentEncoding": "binary"}},
                "image/png": {"schema": {"type": "string", "contentEncoding": "binary"}}}}))
            .params(group_params()).errors(&BODY_ERRORS).errors(&[403, 404, 409, 503])),
    ]
}

pub(super) fn schemas() -> Map<String, Value> {
    let ts = json!({"type": ["integer", "null"], "description": MILLIS});
    let nullable = json!({"type": ["string", "null"]});
    let person = json!({"type": "object", "required": ["jid", "lid", "phoneNumber"], "properties": {
        "jid": nullable, "lid": nullable, "phoneNumber": nullable}});
    let contacts = json!({"type": "array", "minItems": 1, "maxItems": 256, "items": {"type": "string"},
        "description": "Phone digits, @s.whatsapp.net JIDs or @lid addresses (a group id is 400)"});
    let ephemeral = json!({"type": "integer", "enum": [0, 86400, 604800, 7776000]});
    let mut m = Map::new();
    m.insert("GroupParticipant".into(), object(&["jid", "lid", "phoneNumber", "role"], json!({
        "jid": nullable, "lid": nullable, "phoneNumber": nullable, "role": string_enum(&["member", "admin", "superadmin"]),
    })));
    m.insert("Group".into(), object(
        &["id", "subject", "description", "owner", "createdAt", "participants", "size", "announce", "locked",
          "ephemeralSeconds", "membershipApproval"],
        json!({
            "id": {"type": "string", "description": "…@g.us"}, "subject": {"type": "string"},
            "description": nullable, "owner": nullable, "createdAt": ts,
            "participants": {"type": "array", "items": schema("GroupParticipant")},
            "size": {"type": "integer", "minimum": 0},
            "announce": {"type": "boolean", "description": "Only admins send"},
            "locked": {"type": "boolean", "description": "Only admins edit the group's info"},
            "ephemeralSeconds": ephemeral, "membershipApproval": {"type": "boolean"},
        }),
    ));
    m.insert("GroupList".into(), list_of("Group"));
    m.insert("ParticipantResult".into(), object(&["contact", "person", "status"], json!({
        "contact": {"type": "string", "description": "As given"},
        "person": {"type": ["object", "null"], "properties": person["properties"].clone()},
        "status": string_enum(&["ok", "needs_invite", "not_on_whatsapp", "not_in_group", "failed"]),
        "code": {"type": "string", "description": "WhatsApp's code, when it gave one"},
    })));
    m.insert("ParticipantResults".into(), object(&["data"], json!({"data": {"type": "array", "items": schema("ParticipantResult")}})));
    m.insert("GroupCreated".into(), object(&["group", "participants"], json!({
        "group": schema("Group"), "participants": {"type": "array", "items": schema("ParticipantResult")},
    })));
    m.insert("CreateGroup".into(), object(&["subject", "participants"], json!({
        "subject": {"type": "string", "minLength": 1, "maxLength": 100}, "participants": contacts,
        "description": {"type": "string", "maxLength": 2048},
    })));
    m.insert("PatchGroup".into(), object(&[], json!({
        "subject": {"type": "string", "minLength": 1, "maxLength": 100},
        "description": {"type": ["string", "null"], "maxLength": 2048},
        "announce": {"type": "boolean"}, "locked": {"type": "boolean"}, "ephemeralSeconds": ephemeral,
        "membershipApproval": {"type": "boolean"},
    })));
    m.insert("ChangeParticipants".into(), object(&["action", "participants"], json!({
        "action": string_enum(&["add", "remove", "promote", "demote"]), "participants": contacts,
        "invite": {"type": "boolean", "description": "Send WhatsApp's invite to people whose privacy refuses the add"},
    })));
    m.insert("AnswerRequests".into(), object(&["action", "participants"], json!({
        "action": string_enum(&["approve", "reject"]), "participants": contacts,
    })));
    m.insert("GroupInvite".into(), object(&["code", "link"], json!({
        "code": {"type": "string"}, "link": {"type": "string", "description": "https://chat.whatsapp.com/<code>"},
    })));
    m.insert("JoinGroup".into(), object(&[], json!({
        "code": {"type": "string", "description": "16 to 32 letters and digits"},
        "link": {"type": "string", "description": "https://chat.whatsapp.com/<code>; exactly one of code and link"},
    })));
    m.insert("JoinRequested".into(), object(&["status"], json!({"status": string_enum(&["requested"])})));
    m.insert("GroupRequest".into(), object(&["person", "requestedAt"], json!({"person": person, "requestedAt": ts})));
    m.insert("GroupRequestList".into(), object(&["data"], json!({"data": {"type": "array", "items": schema("GroupRequest")}})));
    m.insert("SimGroupEvent".into(), object(&["action", "by"], json!({
        "groupId": {"type": "string", "description": "Required but for `created`"},
        "action": string_enum(&["add", "remove", "promote", "demote", "subject", "created"]),
        "participants": {"type": "array", "items": {"type": "string", "description": "Phone digits"}},
        "subject": {"type": "string"}, "by": {"type": "string", "description": "Phone digits"},
    })));
    m.insert("SimGroupEventAccepted".into(), object(&["groupId"], json!({"groupId": {"type": "string"}})));
    m
}
