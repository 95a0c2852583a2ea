//! Build script: stamps the C ABI version into the library and sets the shared library's SONAME.
//!
//! Debian ships an unrelated `libproxy` (a PAC resolver) as `libproxy.so.1` (and, long ago, `.so.0`).
//! A program linked against that one must never load ours, so our SONAME carries a name of its own:
//! `libproxy-rt.so.<abi major>`. `tests/` and the examples create the matching symlink next to the
//! built `libproxy.so`.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libproxy-rt.so.0");
    }
}
