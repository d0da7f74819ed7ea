//! Kubernetes labels and env values are strings, but YAML happily turns `enabled: true` or
//! `replicas: 1` into booleans and numbers. Accept any scalar and keep its text, so a label
//! `inject: true` is compared as `"true"`, the way the chart's `quote` renders it.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A string-valued map that tolerates scalar (bool, number) values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct StringMap(pub BTreeMap<String, String>);

impl StringMap {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }
    pub fn get(&self, key: &str) -> Option<&String> {
        self.0.get(key)
    }
}

impl<const N: usize> From<[(&str, &str); N]> for StringMap {
    fn from(pairs: [(&str, &str); N]) -> Self {
        StringMap(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }
}

pub(crate) fn scalar_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Null => Some(String::new()),
        _ => None,
    }
}

impl<'de> Deserialize<'de> for StringMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StringMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of strings")
            }
            fn visit_unit<E: de::Error>(self) -> Result<StringMap, E> {
                Ok(StringMap::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<StringMap, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = m.next_entry::<String, serde_json::Value>()? {
                    let text = scalar_text(&v).ok_or_else(|| {
                        de::Error::custom(format!(
                            "value of `{k}` must be a string, not a list or map"
                        ))
                    })?;
                    out.insert(k, text);
                }
                Ok(StringMap(out))
            }
        }
        d.deserialize_any(V)
    }
}
