//! `user_events_summary`: beta `/reports/authenticationMethods/userEventsSummary`
//! (graph-api.md §4.1), the app-only successor of `userCredentialUsageDetails`. Its rows
//! have the same shape (`feature`, `authMethod`, `isSuccess`, `eventDateTime`, free-text
//! `failureReason`), so it uses the same fold; `source` tells the two apart.

pub use super::user_credential_usage_details::{Folder, Row, UsageEventCounts};
