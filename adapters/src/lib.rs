//! Adapters for the event log and the store ports.
