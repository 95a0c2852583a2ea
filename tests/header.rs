//! The committed `include/proxy.h` must equal what the pinned cbindgen generates from `src/ffi`,
//! and must compile in every language mode a user may build with (C89 to C17, C++11 to C++20).

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
    let committed = std::fs::read_to_string(root().join("include/proxy.h")).unwrap();
    // The documented run (from src/ffi) and a crate-wide one (`--crate libproxy`, what a packager
    // or a reviewer runs) must both give the committed header: a public Rust-only type of the core
    // must not leak into it.
    for (name, input) in
        [("proxy.h", &["src/ffi/mod.rs"][..]), ("proxy-crate.h", &["--crate", "libproxy"][..])]
    {
        let fresh = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
        let st = Command::new("cbindgen")
            .current_dir(root())
            .args(["--config", "cbindgen.toml", "--quiet", "--output"])
            .arg(&fresh)
            .args(input)
            .status()
            .unwrap();
        assert!(st.success(), "cbindgen {input:?} failed");
        let generated = std::fs::read_to_string(&fresh).unwrap();
        assert!(
            committed == generated,
            "include/proxy.h differs from `cbindgen {input:?}`: run `cbindgen --config cbindgen.toml --output include/proxy.h src/ffi/mod.rs` (and keep Rust-only public types out with `/// cbindgen:ignore`)"
        );
    }
}

/// The modes the header is compiled in, strict: a C89 project (`//` comments, `inline`) or a C++20
/// one (missing initializers, designated initializers) must not get a warning from our header.
const MODES: [(&str, &str, &str); 7] = [
    ("cc", "c", "-std=c89"),
    ("cc", "c", "-std=c99"),
    ("cc", "c", "-std=c11"),
    ("cc", "c", "-std=c17"),
    ("c++", "c++", "-std=c++11"),
    ("c++", "c++", "-std=c++17"),
    ("c++", "c++", "-std=c++20"),
];

#[test]
fn header_compiles_in_every_language_mode() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let src = dir.join("modes.c");
    // Uses the inline helper, so an `inline` the mode lacks is caught, not just declarations.
    std::fs::write(
        &src,
        "#include <proxy.h>\nint main(void) { return (int)proxy_str_from_cstr(\"\").len; }\n",
    )
    .unwrap();
    for (cc, lang, std) in MODES {
        let st = Command::new(cc)
            .args(["-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only", "-x", lang, std, "-I"])
            .arg(root().join("include"))
            .arg(&src)
            .status()
            .expect("compiler");
        assert!(st.success(), "proxy.h does not compile with {cc} {std}");
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
