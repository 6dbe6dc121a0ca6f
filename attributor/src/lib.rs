//! clickledger attributor.
