//! Builds every `tests/c/*.c` program against the freshly built `libproxy.so` with
//! `-Wall -Wextra -Werror` under AddressSanitizer + UBSan, runs it against a test origin, and
//! checks its exit code. Also checks the dynamic symbol table and the SONAME.

mod support;
mod tls_pki;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::origin::Origin;

/// A private copy of the libproxy.so cargo built for this test run (`cargo test` leaves it in
/// target/<profile>/deps and does not refresh target/<profile>/libproxy.so), next to the
/// `libproxy-rt.so.0` symlink the loader looks for (the SONAME).
fn lib_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(prepare_lib_dir).clone()
}

fn prepare_lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let built = [deps.join("libproxy.so"), deps.parent().unwrap().join("libproxy.so")]
        .into_iter()
        .filter(|p| p.exists())
        .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .expect("libproxy.so was not built");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c_api/lib");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&built, dir.join("libproxy.so")).unwrap();
    let link = dir.join(env!("PROXY_ABI_SONAME"));
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink("libproxy.so", &link).unwrap();
    dir
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn compile(src: &Path, out: &Path, lib: &Path) {
    compile_with(src, out, lib, true)
}

fn compile_with(src: &Path, out: &Path, lib: &Path, sanitize: bool) {
    let san: &[&str] = if sanitize {
        &["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer"]
    } else {
        &[]
    };
    let st = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-g", "-O1"])
        .args(san)
        .arg("-I")
        .arg(root().join("include"))
        .arg(src)
        .arg("-o")
        .arg(out)
        .arg(format!("-L{}", lib.display()))
        .arg("-lproxy")
        .arg("-lpthread")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .status()
        .expect("cc not found");
    assert!(st.success(), "compiling {} failed", src.display());
}

fn run_c_test(name: &str) {
    run_c_test_args(name, &[])
}

fn run_c_test_args(name: &str, extra: &[&std::ffi::OsStr]) {
    let lib = lib_dir();
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c_api");
    std::fs::create_dir_all(&out_dir).unwrap();
    let bin = out_dir.join(name);
    compile(&root().join("tests/c").join(format!("{name}.c")), &bin, &lib);

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let origin = rt.block_on(Origin::start());
    let output = Command::new(&bin)
        .arg(origin.addr.to_string())
        .args(extra)
        // cargo test puts target/<profile> (with a possibly stale libproxy.so) on
        // LD_LIBRARY_PATH, which beats the binary's RUNPATH: point it at our copy.
        .env("LD_LIBRARY_PATH", &lib)
        // Rust's runtime keeps some allocations until exit; leaks are checked by the programs'
        // own request_end accounting instead. libproxy itself is not instrumented, so a
        // use-after-free inside it is made visible by filling freed memory with garbage.
        .env("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0:max_free_fill_size=4096:free_fill_byte=171")
        .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        .output()
        .unwrap();
    drop(origin);
    drop(rt);
    let so = String::from_utf8_lossy(&output.stdout);
    let se = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{name} failed: {:?}\nstdout:\n{so}\nstderr:\n{se}", output.status);
}

#[test]
fn c_lifecycle() {
    run_c_test("test_lifecycle");
}

/// Every error carries its cause: address in use vs permission denied (tests/c/test_errors.c),
/// and struct_size larger than the library knows.
#[test]
fn c_errors() {
    run_c_test("test_errors");
}

/// proxy_server_free while another thread is blocked in proxy_server_run.
#[test]
fn c_free_while_run() {
    run_c_test("test_free_while_run");
}

/// Upstream groups: stale ids, NULLs, concurrent updates, checks, background services
/// (tests/c/test_groups.c).
#[test]
fn c_groups() {
    run_c_test("test_groups");
}

/// Configuration file and command line: arguments kept for the host, keys round-trip, a group
/// from the file serves requests and follows a reload, a listener change is refused, a bad file
/// names its line and key (tests/c/test_conf.c).
#[test]
fn c_conf() {
    run_c_test("test_conf");
}

/// The L4 service and the PROXY protocol: headers in and out, TLVs and addresses in both kinds
/// of hooks, the L4 summary, a malformed header closed and logged (tests/c/test_l4.c).
#[test]
fn c_l4_and_proxy_protocol() {
    run_c_test("test_l4");
}

/// Compression settings per service and per request (tests/c/test_compression.c).
#[test]
fn c_compression() {
    run_c_test("test_compression");
}

/// Metrics, access log and rotation, request ids and replaced error pages (tests/c/test_observe.c).
#[test]
fn c_observe() {
    run_c_test("test_observe");
}

/// The cache object, the four cache callbacks, purge and usage (tests/c/test_cache.c).
#[test]
fn c_cache() {
    run_c_test("test_cache");
}

#[test]
fn c_phases() {
    run_c_test("test_phases");
}

#[test]
fn c_pending() {
    run_c_test("test_pending");
}

#[test]
fn c_fail_closed() {
    run_c_test("test_fail_closed");
}

#[test]
fn c_silent_errors() {
    run_c_test("test_silent_errors");
}

#[test]
fn c_thread_hooks() {
    run_c_test("test_thread_hooks");
}

#[test]
fn c_set_uri() {
    run_c_test("test_set_uri");
}

#[test]
fn c_resume_states() {
    run_c_test("test_resume_states");
}

#[test]
fn c_pending_expiry() {
    run_c_test("test_pending_expiry");
}

/// The same program without ASan under valgrind memcheck, which (unlike ASan) sees reads of freed
/// memory inside the uninstrumented Rust library. A missing valgrind fails the test (tests/run-all.sh
/// installs it).
#[test]
fn c_pending_expiry_valgrind() {
    if let Err(e) = Command::new("valgrind").arg("--version").output() {
        panic!("valgrind is required for this test ({e}): apt-get install valgrind");
    }
    let lib = lib_dir();
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c_api");
    std::fs::create_dir_all(&out_dir).unwrap();
    let bin = out_dir.join("test_pending_expiry_plain");
    compile_with(&root().join("tests/c/test_pending_expiry.c"), &bin, &lib, false);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let origin = rt.block_on(Origin::start());
    let output = Command::new("valgrind")
        .args(["-q", "--error-exitcode=99", "--leak-check=no"])
        .arg(format!("--suppressions={}", root().join("tests/c/valgrind.supp").display()))
        .arg(&bin)
        .arg(origin.addr.to_string())
        .env("LD_LIBRARY_PATH", &lib)
        .output()
        .unwrap();
    drop(origin);
    drop(rt);
    let se = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "valgrind run failed: {:?}\n{se}", output.status);
}

/// TLS endpoints, TLS peers, HTTP/2 both ways (tests/c/test_tls.c), with certificates generated
/// here (rcgen) and curl as the client.
#[test]
fn c_tls() {
    let dir = c_tls_dir("c_tls");
    run_c_test_args("test_tls", &[dir.as_os_str()]);
}

/// TLS facts in hooks, certificates replaced at runtime, the certificate callback at once and
/// PENDING (tests/c/test_tls_runtime.c), with the certificates of `c_tls`.
#[test]
fn c_tls_runtime() {
    let dir = c_tls_dir("c_tls_runtime");
    run_c_test_args("test_tls_runtime", &[dir.as_os_str()]);
}

/// A directory with the certificates the C TLS tests read (see tests/c/test_tls.c).
fn c_tls_dir(tag: &str) -> PathBuf {
    let ca = tls_pki::Ca::new("libproxy C test CA");
    let dir = tls_pki::temp_dir(tag);
    let server = ca.server(&["localhost", "127.0.0.1", "origin.test"]);
    let other = ca.server(&["other.test"]);
    let client = ca.client("c-test-client");
    tls_pki::write(&dir, "ca.pem", &ca.pem);
    tls_pki::write(&dir, "server.pem", &server.cert_pem);
    tls_pki::write(&dir, "server.key", &server.key_pem);
    tls_pki::write(&dir, "other.pem", &other.cert_pem);
    tls_pki::write(&dir, "other.key", &other.key_pem);
    tls_pki::write(&dir, "client.pem", &client.cert_pem);
    tls_pki::write(&dir, "client.key", &client.key_pem);
    dir
}

#[test]
fn c_sigpipe() {
    run_c_test("test_sigpipe");
}

#[test]
fn c_include_twice() {
    run_c_test("test_include_twice");
}

#[test]
fn exported_symbols_all_start_with_proxy() {
    let lib = lib_dir().join("libproxy.so");
    let out = Command::new("nm").args(["-D", "--defined-only"]).arg(&lib).output().expect("nm");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = text.lines().filter_map(|l| l.split_whitespace().nth(2)).collect();
    assert!(names.len() > 40, "too few exports: {names:?}");
    let stray: Vec<&&str> = names.iter().filter(|n| !n.starts_with("proxy_")).collect();
    assert!(stray.is_empty(), "exports without the proxy_ prefix: {stray:?}");
}

#[test]
fn soname_is_our_own() {
    let lib = lib_dir().join("libproxy.so");
    let out = Command::new("readelf").arg("-d").arg(&lib).output().expect("readelf");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("Library soname: [{}]", env!("PROXY_ABI_SONAME"))), "{text}");
}

/// The phase table the bindings read: names, the end of the list, where PENDING is allowed
/// (tests/c/test_phase_names.c).
#[test]
fn c_phase_names() {
    run_c_test("test_phase_names");
}

/// `cargo build` leaves `target/<profile>/libproxy-rt.so.0 -> libproxy.so` (build.rs), so a
/// program linked against the built library (the Go binding's default build, `go run` right after
/// `cargo build --release`) finds it by its SONAME.
#[test]
fn build_leaves_the_soname_link() {
    let profile_dir = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().to_path_buf();
    let link = profile_dir.join(env!("PROXY_ABI_SONAME"));
    let target = std::fs::read_link(&link).unwrap_or_else(|e| panic!("{}: {e}", link.display()));
    assert_eq!(target, PathBuf::from("libproxy.so"));
}

/// proxy_peer_check outside a session: valid and invalid peers, the reason (tests/c/test_peer_check.c).
#[test]
fn c_peer_check() {
    run_c_test("test_peer_check");
}
