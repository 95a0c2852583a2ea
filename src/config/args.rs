//! Pingora's command line (`-c/--conf FILE`, `-d/--daemon`, `-t/--test`, `-u/--upgrade`), parsed
//! by the library so that a C host passes `argc/argv`, a Python host `sys.argv` and a Go host
//! `os.Args`. Everything else is handed back in order for the host's own parser (Go's `flag`,
//! `argparse`, `getopt`), so the two coexist.

use std::path::PathBuf;

use super::ConfError;

/// The library's flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    /// `-c/--conf FILE`: the configuration file.
    pub conf: Option<PathBuf>,
    /// `-d/--daemon`: run in the background (also `daemon: true` in the file).
    pub daemon: bool,
    /// `-t/--test`: check the configuration and its certificates, then exit 0 or 1.
    pub test: bool,
    /// `-u/--upgrade`: take the listening sockets over from the running process.
    pub upgrade: bool,
}

fn error(message: String) -> ConfError {
    ConfError { file: "<command line>".into(), line: 0, col: 0, key: String::new(), message }
}

/// Splits `argv` (program name first) into the library's flags and the rest, program name
/// included, in their original order. Short boolean flags combine (`-du`); `-c` may end such a
/// group (`-dc FILE`). Parsing stops at `--`, which stays in the rest for the host.
pub fn parse_args(argv: &[String]) -> Result<(Args, Vec<String>), ConfError> {
    let mut args = Args::default();
    let mut rest = Vec::with_capacity(argv.len());
    let mut it = argv.iter().enumerate();
    if let Some((_, prog)) = it.next() {
        rest.push(prog.clone());
    }
    let conf_value = |args: &mut Args, v: Option<&String>, flag: &str| match v {
        Some(v) if !v.is_empty() => {
            args.conf = Some(PathBuf::from(v));
            Ok(())
        }
        _ => Err(error(format!("{flag} needs a file name"))),
    };
    while let Some((_, a)) = it.next() {
        match a.as_str() {
            "--" => {
                rest.extend(std::iter::once(a.clone()).chain(it.by_ref().map(|(_, s)| s.clone())));
                break;
            }
            "--daemon" => args.daemon = true,
            "--test" => args.test = true,
            "--upgrade" => args.upgrade = true,
            "--conf" => conf_value(&mut args, it.next().map(|(_, s)| s), "--conf")?,
            s if s.starts_with("--conf=") => {
                conf_value(&mut args, Some(&s["--conf=".len()..].to_owned()), "--conf")?
            }
            s if is_short_group(s) => {
                for ch in s[1..].chars() {
                    match ch {
                        'd' => args.daemon = true,
                        't' => args.test = true,
                        'u' => args.upgrade = true,
                        _ => conf_value(&mut args, it.next().map(|(_, s)| s), "-c")?,
                    }
                }
            }
            s if s.starts_with("-c") && s.len() > 2 => conf_value(&mut args, Some(&s[2..].to_owned()), "-c")?,
            _ => rest.push(a.clone()),
        }
    }
    Ok((args, rest))
}

/// `-d`, `-tu`, `-dc`: a group of our short flags, `c` only last. Anything else (`-v`, `-dx`)
/// belongs to the host.
fn is_short_group(s: &str) -> bool {
    let Some(body) = s.strip_prefix('-') else { return false };
    !body.is_empty()
        && !body.starts_with('-')
        && body.char_indices().all(|(i, c)| matches!(c, 'd' | 't' | 'u') || (c == 'c' && i == body.len() - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_come_out_and_the_rest_stays_in_order() {
        let t: &[(&[&str], Args, &[&str])] = &[
            (&["p"], Args::default(), &["p"]),
            (
                &["p", "-c", "a.yaml", "127.0.0.1:0", "-v"],
                Args { conf: Some("a.yaml".into()), ..Default::default() },
                &["p", "127.0.0.1:0", "-v"],
            ),
            (
                &["p", "--conf=b.yaml", "-du", "x"],
                Args { conf: Some("b.yaml".into()), daemon: true, upgrade: true, ..Default::default() },
                &["p", "x"],
            ),
            (
                &["p", "-dc", "c.yaml", "--test"],
                Args { conf: Some("c.yaml".into()), daemon: true, test: true, ..Default::default() },
                &["p"],
            ),
            (&["p", "-cd.yaml"], Args { conf: Some("d.yaml".into()), ..Default::default() }, &["p"]),
            (&["p", "-dx", "--", "-d"], Args::default(), &["p", "-dx", "--", "-d"]),
            (
                &["p", "--upgrade", "--daemon", "-flag=1"],
                Args { daemon: true, upgrade: true, ..Default::default() },
                &["p", "-flag=1"],
            ),
        ];
        for (argv, want, rest) in t {
            let (got, got_rest) = parse_args(&v(argv)).unwrap();
            assert_eq!((&got, got_rest), (want, v(rest)), "{argv:?}");
        }
    }

    #[test]
    fn a_conf_flag_without_a_file_is_an_error() {
        for argv in [&["p", "-c"][..], &["p", "--conf"], &["p", "--conf="], &["p", "-dc"]] {
            let e = parse_args(&v(argv)).unwrap_err();
            assert!(e.to_string().contains("needs a file name"), "{argv:?}: {e}");
        }
    }
}
