//! Links the Xen libraries, and only when the `xen` feature is on.
//!
//! Without the feature nothing is linked, so the crate builds on machines without libxen-dev.
//! With it, the linker needs the development symlinks (`libxenvchan.so`, `libxengnttab.so`,
//! `libxenstore.so`) that Debian's `libxen-dev` installs in the multiarch library directory.
//! `XEN_LIB_DIR` adds a directory to search first (a Xen built from source, a sysroot).

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=XEN_LIB_DIR");
    if env::var_os("CARGO_FEATURE_XEN").is_none() {
        return;
    }
    if let Some(dir) = env::var_os("XEN_LIB_DIR") {
        println!("cargo:rustc-link-search=native={}", dir.to_string_lossy());
    }
    // libxenvchan: the vchan ring (libxenvchan.h). It pulls in libxenevtchn itself.
    println!("cargo:rustc-link-lib=dylib=xenvchan");
    // libxengnttab: both grant interfaces, xengnttab_* (map) and xengntshr_* (share),
    // declared in xengnttab.h. There is no separate libxengntshr.
    println!("cargo:rustc-link-lib=dylib=xengnttab");
    // libxenstore: xs_open/xs_read/xs_close (xenstore.h), to learn our own domain id.
    println!("cargo:rustc-link-lib=dylib=xenstore");
}
