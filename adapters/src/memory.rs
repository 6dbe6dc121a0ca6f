//! How the long-running processes use memory.

/// Turn transparent huge pages off for this process, for every thread.
///
/// The stages' state grows by hundreds of megabytes and the allocator hands freed spans back to
/// the kernel; with huge pages (mimalloc asks for them on this kernel's `madvise` setting) the
/// first touch of every 2 MiB region has the kernel zero all of it. That zeroing was 14% of the
/// settler's CPU time; with 4 KiB pages only the pages touched are zeroed, and the settler
/// settles about 15% more events a second (docs/PERFORMANCE.md). A kernel that refuses is
/// logged and otherwise ignored: it only costs speed.
pub fn small_pages() {
    if let Err(error) = nix::sys::prctl::set_thp_disable(true) {
        tracing::warn!(%error, "could not turn transparent huge pages off");
    }
}
