//! (pending) The secret guard.
/// Redacts secret values from text.
#[derive(Debug, Default)]
pub struct Redactor;
