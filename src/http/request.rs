//! A request as handlers see it: method, path parameters, query, headers and a
//! body already read under the size limit; plus strict parsing helpers.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use hyper::header::CONTENT_TYPE;
use hyper::{HeaderMap, Method};
use serde::Deserialize;
use ulid::Ulid;

use super::error::{ApiError, ErrorCode};
use crate::auth::Principal;

/// A buffered request.
pub struct Req {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The `{id}` path segment, if the route has one.
    pub id: Option<String>,
    /// The `{msgId}` path segment, if the route has one.
    pub sub_id: Option<String>,
    pub request_id: String,
    /// The caller's organization, once known, for the access log.
    pub log_org: Arc<OnceLock<String>>,
    /// The caller, authenticated by the pipeline before the body was read
    /// (`None` on routes that take no token).
    pub principal: Option<Principal>,
    /// The connection serving the request (`None` when a handler is driven
    /// directly): a streamed answer needs it to end on shutdown and to cut a
    /// reader that stopped reading.
    pub conn: Option<Arc<super::conn::ConnState>>,
    /// The media budget charged for this request's body before it was read
    /// (routes that carry media); the handler holds it until the media is
    /// staged.
    pub media_charge: Option<crate::messaging::media_budget::Charge>,
}

impl Req {
    /// Parses the JSON body strictly: `application/json` only, unknown fields
    /// and wrong types refused with the offending field named. An empty body is `{}`.
    /// `T` may borrow from the body (a large base64 string is then not
    /// copied).
    pub fn json<'a, T: Deserialize<'a>>(&'a self) -> Result<T, ApiError> {
        let body: &[u8] = if self.body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &self.body };
        if !self.body.is_empty() {
            let ct = self.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            let mime = ct.split(';').next().unwrap_or("").trim();
            if !mime.eq_ignore_ascii_case("application/json") {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    "request body must be application/json",
                ));
            }
        }
        let mut de = serde_json::Deserializer::from_slice(body);
        let value = serde_path_to_error::deserialize(&mut de).map_err(field_error)?;
        de.end().map_err(|_| ApiError::new(ErrorCode::InvalidRequest, "invalid JSON body: trailing data after the JSON value"))?;
        Ok(value)
    }

    /// The `{id}` path segment as a ULID; anything else is 404 for `what`.
    pub fn ulid(&self, what: &str) -> Result<Ulid, ApiError> {
        self.id
            .as_deref()
            .filter(|s| s.len() == 26)
            .and_then(|s| Ulid::from_string(s).ok())
            .ok_or_else(|| ApiError::not_found(what))
    }

    /// The `{msgId}` path segment as a ULID; anything else is 404 for `what`.
    pub fn sub_ulid(&self, what: &str) -> Result<Ulid, ApiError> {
        self.sub_id
            .as_deref()
            .filter(|s| s.len() == 26)
            .and_then(|s| Ulid::from_string(s).ok())
            .ok_or_else(|| ApiError::not_found(what))
    }

    /// The query string, parsed.
    pub fn query(&self) -> Result<Query, ApiError> {
        Query::parse(self.query.as_deref().unwrap_or(""))
    }
}

/// Names the field a deserialization error is about (serde reports unknown
/// fields at the parent: the field itself is named).
fn field_error<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> ApiError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    let field = if path == "." { String::new() } else { path };
    let msg = inner.to_string();
    let field = match (field.is_empty(), msg.strip_prefix("unknown field `")) {
        (true, Some(rest)) => rest.split('`').next().unwrap_or("").to_string(),
        _ => field,
    };
    let msg = match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    };
    if field.is_empty() {
        ApiError::new(ErrorCode::InvalidRequest, format!("invalid JSON body: {msg}"))
    } else {
        ApiError::invalid(&field, format!("{field}: {msg}"))
    }
}

/// Deserializes a JSON value (an item of a batch) as strictly as a body.
pub fn from_value<T: Deserialize<'static>>(v: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(v).map_err(field_error)
}

/// Query parameters; every one must be consumed, so unknown ones are refused.
pub struct Query {
    /// Name → (position in the query, value).
    pairs: HashMap<String, (usize, String)>,
}

impl Query {
    /// Parses `a=1&b=2`, refusing repeated names. Linear in the query's length.
    pub fn parse(raw: &str) -> Result<Query, ApiError> {
        let mut pairs = HashMap::new();
        for (i, (k, v)) in form_urlencoded::parse(raw.as_bytes()).enumerate() {
            if let Some(_dup) = pairs.insert(k.clone().into_owned(), (i, v.into_owned())) {
                return Err(ApiError::invalid(&k, format!("query parameter {k} given twice")));
            }
        }
        Ok(Query { pairs })
    }

    /// Takes a parameter out.
    pub fn take(&mut self, name: &str) -> Option<String> {
        self.pairs.remove(name).map(|(_, v)| v)
    }

    /// Refuses whatever was not taken (naming the first one given).
    pub fn finish(self) -> Result<(), ApiError> {
        match self.pairs.iter().min_by_key(|(_, (i, _))| *i) {
            Some((k, _)) => Err(ApiError::invalid(k, format!("unknown query parameter {k}"))),
            None => Ok(()),
        }
    }

    /// `limit` (default 50, 1..=200) and `cursor`.
    pub fn page(&mut self) -> Result<(usize, Option<String>), ApiError> {
        let limit = match self.take("limit") {
            None => 50,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=200).contains(&n) => n,
                _ => return Err(ApiError::invalid("limit", "limit must be an integer from 1 to 200")),
            },
        };
        let cursor = self.take("cursor").filter(|c| !c.is_empty());
        Ok((limit, cursor))
    }
}
