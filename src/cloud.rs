//! The national clouds (graph-api.md §1.1): each has its own Graph root, login host and
//! token scope. A leaf: it knows no other module.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A national cloud (graph-api.md §1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Cloud {
    /// Global service (includes GCC moderate).
    #[default]
    Global,
    /// US Gov L4 (GCC High).
    Usgov,
    /// US Gov L5 (DoD).
    UsgovDod,
    /// China, operated by 21Vianet.
    China,
}

impl Cloud {
    /// The Graph root.
    pub fn graph_url(self) -> &'static str {
        match self {
            Self::Global => "https://graph.microsoft.com",
            Self::Usgov => "https://graph.microsoft.us",
            Self::UsgovDod => "https://dod-graph.microsoft.us",
            Self::China => "https://microsoftgraph.chinacloudapi.cn",
        }
    }

    /// The token authority host.
    pub fn login_url(self) -> &'static str {
        match self {
            Self::Global => "https://login.microsoftonline.com",
            Self::Usgov | Self::UsgovDod => "https://login.microsoftonline.us",
            Self::China => "https://login.chinacloudapi.cn",
        }
    }

    /// The client-credentials scope: the Graph root of the same cloud plus `/.default`.
    pub fn scope(self) -> String {
        format!("{}/.default", self.graph_url())
    }
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Global => "global",
            Self::Usgov => "usgov",
            Self::UsgovDod => "usgov_dod",
            Self::China => "china",
        })
    }
}
