//! Placeholder until this stage is built; see ARCHITECTURE.md.
