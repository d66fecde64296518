//! Placeholder; see the workspace README.
