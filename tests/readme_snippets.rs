//! Every C and C++ snippet the READMEs show (fenced ```c / ```cpp blocks in README.md,
//! bindings/*/README.md and examples/*/README.md) compiles against include/proxy.h, strict, as C99
//! and C11 and, since C++ users paste C snippets too, as C++17 (```cpp blocks as C++ only).
//! A snippet without `main` is compiled as a translation unit of its own, so it must be one.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// (language tag, code) of each fenced block whose info string is c, cpp or c++.
fn snippets(markdown: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur: Option<(String, String)> = None;
    for line in markdown.lines() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut cur, fence) {
            (None, Some(tag)) => {
                let tag = tag.trim().to_ascii_lowercase();
                if ["c", "cpp", "c++"].contains(&tag.as_str()) {
                    cur = Some((tag, String::new()));
                } else if !tag.is_empty() {
                    // Another language: skip to its closing fence.
                    cur = Some((String::from("-"), String::new()));
                }
            }
            (Some(_), Some(_)) => {
                let (tag, code) = cur.take().unwrap();
                if tag != "-" {
                    out.push((tag, code));
                }
            }
            (Some((_, code)), None) => {
                code.push_str(line);
                code.push('\n');
            }
            (None, None) => {}
        }
    }
    out
}

fn readmes() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    for dir in ["bindings", "examples"] {
        for e in std::fs::read_dir(root().join(dir)).unwrap().flatten() {
            let f = e.path().join("README.md");
            if f.is_file() {
                files.push(f);
            }
        }
    }
    files
}

fn compile(src: &Path, cc: &str, lang: &str, std: &str) -> bool {
    Command::new(cc)
        .args(["-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only", "-x", lang, std, "-I"])
        .arg(root().join("include"))
        .arg(src)
        .status()
        .expect("compiler")
        .success()
}

#[test]
fn every_readme_c_snippet_compiles() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("readme-snippets");
    std::fs::create_dir_all(&dir).unwrap();
    let mut count = 0;
    let mut failed = Vec::new();
    for md in readmes() {
        let text = std::fs::read_to_string(&md).unwrap();
        let rel = md.strip_prefix(root()).unwrap().display().to_string();
        for (i, (tag, code)) in snippets(&text).into_iter().enumerate() {
            let src = dir.join(format!("{}-{i}.txt", rel.replace('/', "_")));
            std::fs::write(&src, &code).unwrap();
            let modes: &[(&str, &str, &str)] = if tag == "c" {
                &[("cc", "c", "-std=c99"), ("cc", "c", "-std=c11"), ("c++", "c++", "-std=c++17")]
            } else {
                &[("c++", "c++", "-std=c++17")]
            };
            for (cc, lang, std) in modes {
                if !compile(&src, cc, lang, std) {
                    failed.push(format!("{rel} snippet {i} ({tag}) with {cc} {std}"));
                }
            }
            count += 1;
        }
    }
    assert!(count >= 1, "no C snippet found in the READMEs: is the fence tag still ```c?");
    assert!(failed.is_empty(), "README snippets that do not compile: {failed:#?}");
}
