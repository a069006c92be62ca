//! Plans in the orchestra's database (being built).

/// Tables of plans and their steps.
pub const SCHEMA: &str = "CREATE TABLE plans_placeholder (id INTEGER PRIMARY KEY);";
