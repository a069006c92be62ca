//! More than one agent: plans and their approval, the fleet of workers, jobs, the question
//! queue (being built).
//!
//! A layer above the engine: it uses only the engine's face (`EngineApi`) and its data types,
//! never the store, and it never imports `acp`, `bridge`, `daemon` or `cli`; the engine never
//! imports it (`tests/layering.rs`).

pub mod autorespond;
pub mod db;
pub mod jobs;
pub mod plan;
pub mod plans;
pub mod questions;
