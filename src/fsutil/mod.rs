//! File-system utilities for immutable on-disk data: read-only memory maps exposed as
//! shared byte buffers, and atomic creation and removal of directories and files.
//!
//! [`mmap`] holds the crate's only `unsafe` code.

pub mod atomic;
mod bytes;
#[allow(unsafe_code)]
pub mod mmap;

pub use atomic::{
    cleanup_tmp_dirs, create_tmp_dir, fsync_dir, publish_dir, remove_dir_atomic, write_file_atomic,
    TMP_FOR_CREATION, TMP_FOR_DELETION,
};
pub use bytes::SharedBytes;
pub use mmap::MappedFile;
