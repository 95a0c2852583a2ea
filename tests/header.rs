//! The committed `include/proxy.h` must equal what the pinned cbindgen generates from `src/ffi`,
//! and must compile as C99 and as C++.

use std::path::PathBuf;
use std::process::Command;

const CBINDGEN_VERSION: &str = "0.29.2";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn header_matches_cbindgen_output() {
    // A drift guard that passes without its tool guards nothing: a missing cbindgen fails the test
    // (tests/run-all.sh installs the pinned one).
    let v = match Command::new("cbindgen").arg("--version").output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        Ok(o) => {
            panic!("`cbindgen --version` failed ({}); cbindgen {CBINDGEN_VERSION} is required", o.status)
        }
        Err(e) => panic!(
            "cbindgen {CBINDGEN_VERSION} is required to check include/proxy.h ({e}): \
             cargo install --locked cbindgen --version {CBINDGEN_VERSION}"
        ),
    };
    assert!(v.ends_with(CBINDGEN_VERSION), "cbindgen {CBINDGEN_VERSION} is pinned, found `{v}`");
    let fresh = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("proxy.h");
    let st = Command::new("cbindgen")
        .current_dir(root())
        .args(["--config", "cbindgen.toml", "--quiet", "--output"])
        .arg(&fresh)
        .arg("src/ffi/mod.rs")
        .status()
        .unwrap();
    assert!(st.success(), "cbindgen failed");
    let committed = std::fs::read_to_string(root().join("include/proxy.h")).unwrap();
    let generated = std::fs::read_to_string(&fresh).unwrap();
    assert!(
        committed == generated,
        "include/proxy.h is out of date: run `cbindgen --config cbindgen.toml --output include/proxy.h src/ffi/mod.rs`"
    );
}

#[test]
fn header_compiles_as_c99_and_cxx() {
    let h = root().join("include/proxy.h");
    for (cc, args) in [("cc", &["-std=c99", "-x", "c"][..]), ("c++", &["-std=c++11", "-x", "c++"][..])] {
        let st = Command::new(cc)
            .args(["-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only"])
            .args(args)
            .arg(&h)
            .status()
            .expect("compiler");
        assert!(st.success(), "proxy.h does not compile with {cc} {args:?}");
    }
}

/// Including the header twice must compile (its inline helpers sit inside the include guard).
#[test]
fn header_included_twice_compiles_as_c99_and_cxx() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let src = dir.join("twice.c");
    std::fs::write(&src, "#include <proxy.h>\n#include <proxy.h>\nint main(void) { return (int)proxy_str_from_cstr(\"\").len; }\n").unwrap();
    for (cc, args) in [("cc", &["-std=c99", "-x", "c"][..]), ("c++", &["-std=c++11", "-x", "c++"][..])] {
        let st = Command::new(cc)
            .args(["-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only", "-I"])
            .arg(root().join("include"))
            .args(args)
            .arg(&src)
            .status()
            .expect("compiler");
        assert!(st.success(), "including proxy.h twice fails with {cc} {args:?}");
    }
}
