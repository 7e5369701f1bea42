//! oxim-conf (placeholder until the crate lands).
