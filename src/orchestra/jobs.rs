//! The job registry (being built).

/// Tables of the job registry.
pub const SCHEMA: &str = "CREATE TABLE jobs_placeholder (id INTEGER PRIMARY KEY);";
