//! Shared helpers for Livefarm's multi-process integration tests.
