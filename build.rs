//! Build script: sets the shared library's SONAME from the ABI major version.
//!
//! Debian ships an unrelated `libproxy` (a PAC resolver) as `libproxy.so.1` (and, long ago, `.so.0`).
//! A program linked against that one must never load ours, so our SONAME carries a name of its own:
//! `libproxy-rt.so.<abi major>`, and this script also leaves the matching symlink
//! `target/<profile>/libproxy-rt.so.<major> -> libproxy.so` so that whatever links against the built
//! library (the Go binding, `-Wl,-rpath` to target/release) runs straight after `cargo build`.
//!
//! The ABI version has one source, `PROXY_ABI_VERSION_MAJOR` / `_MINOR` in `src/ffi/result.rs`
//! (cbindgen copies them into the header); the major is read from there, so the SONAME cannot
//! drift from it. `tests/abi_version.rs` checks the bindings against the same file.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/ffi/result.rs");
    let src = std::fs::read_to_string("src/ffi/result.rs").expect("read src/ffi/result.rs");
    let major = abi_const(&src, "PROXY_ABI_VERSION_MAJOR");
    // Parsed too so that a result.rs the test below cannot read fails the build, not later.
    let _minor = abi_const(&src, "PROXY_ABI_VERSION_MINOR");
    println!("cargo:rustc-env=PROXY_ABI_SONAME=libproxy-rt.so.{major}");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libproxy-rt.so.{major}");
        soname_link(&format!("libproxy-rt.so.{major}"));
    }
}

/// Makes `<profile dir>/<soname> -> libproxy.so` (dangling until rustc writes the library).
///
/// Cargo cannot run a step after linking, and a loader looks a library up by its SONAME only: without
/// this link every program linked against `target/release/libproxy.so` fails with "libproxy-rt.so.0:
/// cannot open shared object file". The profile directory is three levels above OUT_DIR
/// (`<profile>/build/<pkg>-<hash>/out`); anything else (a vendored build, an unusual layout) is left
/// alone rather than guessed at, and a failure only costs the convenience, never the build.
#[cfg(unix)]
fn soname_link(soname: &str) {
    let Some(out) = std::env::var_os("OUT_DIR").map(std::path::PathBuf::from) else { return };
    let Some(profile) = out.ancestors().nth(3) else { return };
    if out.parent().and_then(|p| p.parent()).and_then(|p| p.file_name()) != Some("build".as_ref()) {
        return;
    }
    let link = profile.join(soname);
    if std::fs::read_link(&link).is_ok_and(|t| t == std::path::Path::new("libproxy.so")) {
        return;
    }
    let _ = std::fs::remove_file(&link);
    if let Err(e) = std::os::unix::fs::symlink("libproxy.so", &link) {
        println!("cargo:warning=could not create {}: {e}", link.display());
    }
}

#[cfg(not(unix))]
fn soname_link(_soname: &str) {}

/// The value of `pub const NAME: u32 = N;` in result.rs.
fn abi_const(src: &str, name: &str) -> u32 {
    let decl = format!("pub const {name}: u32 = ");
    let line = src
        .lines()
        .find_map(|l| l.trim().strip_prefix(decl.as_str()))
        .unwrap_or_else(|| panic!("{name} not found in src/ffi/result.rs"));
    line.trim_end_matches(';').trim().parse().unwrap_or_else(|_| panic!("{name} is not a plain number"))
}
