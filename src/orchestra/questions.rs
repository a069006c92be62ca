//! The durable question queue (being built).

/// Tables of the question queue.
pub const SCHEMA: &str = "CREATE TABLE questions_placeholder (id INTEGER PRIMARY KEY);";
