//! Where components run. Only the `local` substrate exists on this machine; the docker and kind
//! tiers plug in here with the same component specs.

pub mod local;

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Local,
    Docker,
    Kind,
}

impl FromStr for Tier {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "local" => Ok(Tier::Local),
            "docker" => Ok(Tier::Docker),
            "kind" => Ok(Tier::Kind),
            other => anyhow::bail!("unknown tier `{other}`: use one of local, docker, kind"),
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tier::Local => "local",
            Tier::Docker => "docker",
            Tier::Kind => "kind",
        })
    }
}
