//! The end-to-end tests' harness is the workspace's test kit (`testkit/`), shared with the
//! benchmarks.
#![allow(unused_imports)]

pub use testkit::oracle::{Expected, Inputs};
pub use testkit::*;
