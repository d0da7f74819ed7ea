use serde::Deserialize;
use std::collections::BTreeMap;
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct D { pub kerberos_enabled: Option<bool>, pub inner: Option<I>, #[serde(flatten)] pub extra: BTreeMap<String, serde_json::Value> }
#[derive(Debug, Deserialize)]
pub struct I { pub port: Option<u16>, #[serde(flatten)] pub extra: BTreeMap<String, serde_json::Value> }
#[test]
fn t() {
    let e = serde_yaml::from_str::<D>("a: 1\nb: 2\nkerberosEnabled: \"yes\"\nc: 3\n").unwrap_err();
    println!("{e} {:?}", e.location());
    let e = serde_yaml::from_str::<D>("a: 1\ninner:\n  x: 1\n  port: [1]\n  y: 2\nc: 3\n").unwrap_err();
    println!("{e} {:?}", e.location());
    let e = serde_json::from_str::<D>("{\"a\": 1,\n \"kerberosEnabled\": \"yes\",\n \"c\": 3}").unwrap_err();
    println!("{e} {:?}", e.line());
}
