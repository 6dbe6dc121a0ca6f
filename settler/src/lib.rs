//! The settler: from attributed conversions and clicks to commission lines, bills and
//! reports.
//!
//! - [`commission`]: the commission engine, a pure module (no I/O, no clock) holding every
//!   rule of the seed documents and DESIGN's "Rules the seeds leave open".

pub mod commission;
