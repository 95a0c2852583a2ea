//! The ABI version has one source, `PROXY_ABI_VERSION_MAJOR` / `_MINOR` in `src/ffi/result.rs`.
//! cbindgen copies it into the header and `build.rs` derives the SONAME from it; the Python and Go
//! bindings and the scripts that create the SONAME symlink state it again, so they are checked
//! against it here.

use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// `NAME <sep> N` on a line of `text` (e.g. `pub const X: u32 = 4;`, `X = 4`, `x = 4`).
fn number_after(text: &str, prefix: &str, file: &str) -> u32 {
    let rest = text
        .lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .unwrap_or_else(|| panic!("`{prefix}` not found in {file}"));
    let digits: String = rest.trim().chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().unwrap_or_else(|_| panic!("`{prefix}` in {file} is not followed by a number: {rest}"))
}

fn source() -> (u32, u32) {
    let src = read("src/ffi/result.rs");
    (
        number_after(&src, "pub const PROXY_ABI_VERSION_MAJOR: u32 =", "result.rs"),
        number_after(&src, "pub const PROXY_ABI_VERSION_MINOR: u32 =", "result.rs"),
    )
}

#[test]
fn library_reports_the_source_version() {
    let (major, minor) = source();
    assert_eq!(proxy::ffi::result::proxy_abi_version(), major << 16 | minor);
    assert_eq!(env!("PROXY_ABI_SONAME"), format!("libproxy-rt.so.{major}"));
}

#[test]
fn header_states_the_source_version() {
    let (major, minor) = source();
    let h = read("include/proxy.h");
    assert!(h.contains(&format!("#define PROXY_ABI_VERSION_MAJOR {major}\n")), "proxy.h major");
    assert!(h.contains(&format!("#define PROXY_ABI_VERSION_MINOR {minor}\n")), "proxy.h minor");
}

#[test]
fn python_binding_states_the_source_version() {
    let (major, minor) = source();
    let py = read("bindings/python/libproxy/_ffi.py");
    assert_eq!(number_after(&py, "ABI_MAJOR =", "_ffi.py"), major, "_ffi.py ABI_MAJOR");
    assert_eq!(number_after(&py, "ABI_MINOR =", "_ffi.py"), minor, "_ffi.py ABI_MINOR");
    let min = number_after(&py, "ABI_MIN_MINOR =", "_ffi.py");
    assert!(min <= minor, "_ffi.py ABI_MIN_MINOR {min} is newer than the library's {minor}");
}

#[test]
fn go_binding_checks_the_source_version() {
    let (_, minor) = source();
    let go = read("bindings/go/server.go");
    // The major comes from the header the binding is compiled against, never a copy.
    assert!(go.contains("const HeaderABIMajor = C.PROXY_ABI_VERSION_MAJOR"), "server.go HeaderABIMajor");
    let min = number_after(&go, "const minABIMinor =", "server.go");
    assert!(min <= minor, "server.go minABIMinor {min} is newer than the library's {minor}");
}

#[test]
fn every_soname_mention_uses_the_source_major() {
    let (major, _) = source();
    let want = format!("libproxy-rt.so.{major}");
    for rel in [
        "bindings/python/libproxy/_ffi.py",
        "bindings/python/README.md",
        "bindings/go/run-tests.sh",
        "bindings/go/cgo_repo.go",
        "bindings/go/doc.go",
        "bindings/go/README.md",
        "README.md",
        "cbindgen.toml",
    ] {
        let text = read(rel);
        let mut found = false;
        for (i, _) in text.match_indices("libproxy-rt.so.") {
            let tail: String = text[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
                .collect();
            let tail = tail.trim_end_matches('.');
            assert_eq!(tail, want, "{rel} names {tail}, the SONAME is {want}");
            found = true;
        }
        assert!(found, "{rel} no longer names the SONAME: drop it from this list");
    }
}

/// The C examples' Makefile names no SONAME: it reads the major from the header (which cbindgen
/// copies from result.rs), so what it links against follows a major bump.
#[test]
fn c_examples_makefile_derives_the_soname() {
    let (major, _) = source();
    let out = std::process::Command::new("make")
        .args(["-s", "-C"])
        .arg(root().join("examples/c"))
        .arg("print-soname")
        .output()
        .expect("make");
    assert!(out.status.success(), "make print-soname: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("libproxy-rt.so.{major}"));
    let makefile = read("examples/c/Makefile");
    assert!(
        !makefile.contains(&format!("libproxy-rt.so.{major}")),
        "examples/c/Makefile hard-codes the SONAME"
    );
}
