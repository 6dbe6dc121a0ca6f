//! clickledger ingest.
