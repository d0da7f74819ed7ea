//! `metadataConnectionJson` / `resultBackendConnectionJson`: `{user, pass, host, port, db,
//! sslmode?}`. Houston's API declares them as JSON, so people send either an object or a string
//! that holds JSON; both are accepted and the form is remembered so a rendered mutation sends
//! back what the customer sent.

use super::Extra;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// Every field is optional in the model so that a missing one becomes a finding with a fix,
/// not a parse error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Kept as a raw value: `"5432"` and `5432` both occur in the wild and the port rule
    /// judges them, not the parser.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sslmode: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Connection {
    /// The port as a TCP port, or why it is not one.
    pub fn port_number(&self) -> Result<u16, String> {
        let raw = match &self.port {
            None => return Err("missing".into()),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            Some(serde_json::Value::String(s)) => s.trim().to_string(),
            Some(other) => return Err(format!("`{other}` is not a number")),
        };
        match raw.parse::<i64>() {
            Ok(p) if (1..=65535).contains(&p) => Ok(p as u16),
            Ok(p) => Err(format!("{p} is outside 1-65535")),
            Err(_) => Err(format!("`{raw}` is not an integer")),
        }
    }

    /// `astro_user` of `astro_user@EXAMPLE.TEST`.
    pub fn username(&self) -> Option<&str> {
        self.user
            .as_deref()
            .and_then(|u| u.split_once('@'))
            .map(|(n, _)| n)
    }

    /// `EXAMPLE.TEST` of `astro_user@EXAMPLE.TEST`.
    pub fn realm(&self) -> Option<&str> {
        self.user
            .as_deref()
            .and_then(|u| u.rsplit_once('@'))
            .map(|(_, r)| r)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JsonForm {
    #[default]
    Object,
    /// The connection arrived as a string containing JSON.
    String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConnectionField {
    pub value: Connection,
    pub form: JsonForm,
}

impl<'de> Deserialize<'de> for ConnectionField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A visitor rather than an untagged enum: the enum would swallow the inner error ("did
        // not match any variant") and the parser's position with it.
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ConnectionField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object {user, pass, host, port, db, sslmode} or a string holding one as JSON")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<ConnectionField, E> {
                serde_json::from_str::<Connection>(text)
                    .map(|value| ConnectionField { value, form: JsonForm::String })
                    .map_err(|e| {
                        E::custom(format!(
                            "the string does not hold a connection JSON object ({}, JSON line {} column {})",
                            json_reason(&e),
                            e.line(),
                            e.column()
                        ))
                    })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ConnectionField, A::Error> {
                Connection::deserialize(de::value::MapAccessDeserializer::new(map)).map(|value| {
                    ConnectionField {
                        value,
                        form: JsonForm::Object,
                    }
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// serde_json's message without its own " at line L column C" suffix.
fn json_reason(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    }
}

impl Serialize for ConnectionField {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.form {
            JsonForm::Object => self.value.serialize(s),
            JsonForm::String => {
                let text = serde_json::to_string(&self.value).map_err(serde::ser::Error::custom)?;
                s.serialize_str(&text)
            }
        }
    }
}
