//! A strict JSON object parser for JWT headers, claims and JWKS documents.
//!
//! `serde_json` silently keeps the last of several members with the same name,
//! which lets an attacker smuggle a second `alg` or `sub` past one parser and
//! not another. Security-relevant JSON is therefore parsed here: duplicate
//! member names are refused at any depth, the top level must be an object, and
//! trailing data is an error. The result is an ordinary `serde_json` map.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a document was refused by [`parse_object`]. Never echoes the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrictJsonError(String);

impl StrictJsonError {
    fn new(msg: impl Into<String>) -> Self {
        StrictJsonError(msg.into())
    }
}

impl fmt::Display for StrictJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid JSON: {}", self.0)
    }
}

impl std::error::Error for StrictJsonError {}

/// Parses `bytes` as exactly one JSON object, refusing duplicate member names
/// at any depth, non-object top levels and trailing data.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, StrictJsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue
        .deserialize(&mut de)
        .map_err(|e| StrictJsonError::new(describe(&e)))?;
    de.end()
        .map_err(|_| StrictJsonError::new("trailing data after the object"))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(StrictJsonError::new("expected a JSON object")),
    }
}

/// Summarises a serde_json error without quoting any of the input.
fn describe(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        // Our own errors (duplicate member) are "data" errors and carry no input.
        Category::Data => e.to_string(),
        Category::Syntax => format!("syntax error at line {} column {}", e.line(), e.column()),
        Category::Eof => "unexpected end of input".to_string(),
        Category::Io => "read error".to_string(),
    }
}

/// Seed that deserializes any JSON value, refusing duplicate object members.
struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        StrictValue.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(StrictValue)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                // The member name is attacker-chosen; keep it out of the message.
                return Err(de::Error::custom("duplicate object member"));
            }
            let value = map.next_value_seed(StrictValue)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_objects() {
        let m = parse_object(br#"{"a":1,"b":{"c":[1,2,{"d":null}]},"e":1.5,"f":-3}"#).unwrap();
        assert_eq!(m["a"], 1);
        assert_eq!(m["b"]["c"][2]["d"], Value::Null);
        assert_eq!(m["e"], 1.5);
        assert_eq!(m["f"], -3);
    }

    #[test]
    fn refuses_duplicates_at_any_depth() {
        assert!(parse_object(br#"{"a":1,"a":2}"#).is_err());
        assert!(parse_object(br#"{"x":{"a":1,"a":1}}"#).is_err());
        assert!(parse_object(br#"{"x":[{"a":1,"a":1}]}"#).is_err());
        // Same name in different objects is fine.
        assert!(parse_object(br#"{"x":{"a":1},"y":{"a":1}}"#).is_ok());
    }

    #[test]
    fn refuses_escaped_duplicates() {
        // "\u0061" is "a": the duplicate check runs on decoded names.
        assert!(parse_object(br#"{"a":1,"\u0061":2}"#).is_err());
    }

    #[test]
    fn refuses_non_objects_and_trailing_data() {
        assert!(parse_object(b"[1]").is_err());
        assert!(parse_object(b"\"s\"").is_err());
        assert!(parse_object(b"{} {}").is_err());
        assert!(parse_object(b"{}x").is_err());
        assert!(parse_object(b"").is_err());
        assert!(parse_object(b"{} ").is_ok());
    }

    #[test]
    fn error_does_not_echo_member_names() {
        let e = parse_object(br#"{"secret_name":1,"secret_name":2}"#).unwrap_err();
        assert!(!e.to_string().contains("secret_name"));
    }
}
