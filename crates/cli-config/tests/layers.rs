//! The layering mechanism on its own: file and flag precedence, booleans in both
//! directions, sources, unknown keys and variables, the rendered configuration. The
//! environment layer is tested through the binaries (`sigupdate config`,
//! `sigserver --print-config`).

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser};
use cli_config::{KeyStyle, Layers, MirrorArgs, Source, Spec, resolve_mirror};

#[derive(Debug, Parser)]
struct Cli {
    #[arg(long)]
    dir: Option<PathBuf>,
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    mirror: MirrorArgs,
}

const SPEC: Spec = Spec {
    env_prefix: "T_",
    keys: KeyStyle::Kebab,
    flag_only: &[],
    not_in_file: &["config"],
    other_env: &["LOG"],
    env_families: cli_config::MIRROR_ENV_FAMILIES,
    file_tables: cli_config::MIRROR_FILE_TABLES,
};

/// What one layer sets: file text, variables, flags. clap reads the values of layered
/// variables from the process environment, which a test cannot set without `unsafe`
/// (forbidden here): in-process, `env` reaches the unknown-variable check and the
/// custom-database family only; the binaries' tests cover variables end to end.
struct Case<'a> {
    file: &'a str,
    env: &'a [(&'a str, &'a str)],
    flags: &'a [&'a str],
}

fn resolve(
    tmp: &Path,
    c: &Case<'_>,
) -> Result<
    (
        mirror_core::settings::MirrorSettings,
        Vec<cli_config::Entry>,
        String,
    ),
    String,
> {
    let file = tmp.join("c.toml");
    std::fs::write(&file, c.file).unwrap();
    let cmd = SPEC.prepare(Cli::command());
    let mut argv = vec!["t", "--dir", "/m"];
    argv.extend_from_slice(c.flags);
    let m = cmd
        .clone()
        .try_get_matches_from(argv)
        .map_err(|e| e.to_string())?;
    let vars: Vec<(String, String)> = c
        .env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut layers =
        Layers::new(&SPEC, &cmd, &[&cmd], &m, Some(&file), vars).map_err(|e| format!("{e:#}"))?;
    let s = resolve_mirror(&mut layers, "/m".into()).map_err(|e| format!("{e}"))?;
    Ok((s, layers.entries().to_vec(), layers.render()))
}

fn source_of(entries: &[cli_config::Entry], key: &str) -> Source {
    entries
        .iter()
        .find(|e| e.key == key && e.table.is_none())
        .unwrap()
        .source
        .clone()
}

/// (file, flags; keep-cdiffs and its source, DNS and the source of `no-dns`,
/// bootstrap-cdiffs and its source).
type FileAndFlags<'a> = (
    &'a str,
    &'a [&'a str],
    u32,
    Source,
    bool,
    Source,
    bool,
    Source,
);

#[test]
fn flags_over_file_over_default() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("c.toml");
    let f = || Source::File(file.clone());
    let flag = |s: &str| Source::Flag(s.into());
    // (file, flags) -> (keep_cdiffs, its source, dns, its source, bootstrap, its source)
    let cases: &[FileAndFlags<'_>] = &[
        (
            "",
            &[],
            30,
            Source::Default,
            true,
            Source::Default,
            true,
            Source::Default,
        ),
        (
            "keep-cdiffs = 5\nno-dns = true\nbootstrap-cdiffs = false\n",
            &[],
            5,
            f(),
            false,
            f(),
            false,
            f(),
        ),
        (
            "keep-cdiffs = 5\nno-dns = true\nbootstrap-cdiffs = false\n",
            &["--keep-cdiffs", "9", "--no-dns=false", "--bootstrap-cdiffs"],
            9,
            flag("--keep-cdiffs"),
            true,
            flag("--no-dns"),
            true,
            flag("--bootstrap-cdiffs"),
        ),
        (
            "no-dns = false\nbootstrap-cdiffs = true\n",
            &["--no-dns", "--no-bootstrap-cdiffs"],
            30,
            Source::Default,
            false,
            flag("--no-dns"),
            false,
            flag("--no-bootstrap-cdiffs"),
        ),
        (
            "bootstrap-cdiffs = false\n",
            &["--no-bootstrap-cdiffs=false"],
            30,
            Source::Default,
            true,
            Source::Default,
            true,
            flag("--no-bootstrap-cdiffs"),
        ),
        (
            "",
            &["--no-bootstrap-cdiffs", "--bootstrap-cdiffs=yes"],
            30,
            Source::Default,
            true,
            Source::Default,
            true,
            flag("--bootstrap-cdiffs"),
        ),
    ];
    for (i, (text, flags, keep, keep_src, dns, dns_src, boot, boot_src)) in cases.iter().enumerate()
    {
        let (s, entries, _) = resolve(
            tmp.path(),
            &Case {
                file: text,
                env: &[],
                flags,
            },
        )
        .unwrap();
        assert_eq!(s.keep_cdiffs, *keep, "case {i}");
        assert_eq!(source_of(&entries, "keep-cdiffs"), *keep_src, "case {i}");
        assert_eq!(s.dns, *dns, "case {i}");
        assert_eq!(source_of(&entries, "no-dns"), *dns_src, "case {i}");
        assert_eq!(s.bootstrap_cdiffs, *boot, "case {i}");
        assert_eq!(
            source_of(&entries, "bootstrap-cdiffs"),
            *boot_src,
            "case {i}"
        );
    }
}

#[test]
fn unknown_keys_and_variables_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let e = resolve(
        tmp.path(),
        &Case {
            file: "dri = \"/x\"\n",
            env: &[],
            flags: &[],
        },
    )
    .unwrap_err();
    assert!(e.contains("c.toml") && e.contains("dri"), "{e}");
    // A negation flag and `config` have no file key.
    for key in ["no-bootstrap-cdiffs = true\n", "config = \"/x\"\n"] {
        let e = resolve(
            tmp.path(),
            &Case {
                file: key,
                env: &[],
                flags: &[],
            },
        )
        .unwrap_err();
        assert!(e.contains("unknown key"), "{key}: {e}");
    }
    for var in ["T_UPSTREAMZ", "T_NO_BOOTSTRAP_CDIFFS", "T_CUSTOM__x__COLOR"] {
        let e = resolve(
            tmp.path(),
            &Case {
                file: "",
                env: &[(var, "x")],
                flags: &[],
            },
        )
        .unwrap_err();
        assert!(e.contains(var), "{var}: {e}");
    }
    let e = resolve(
        tmp.path(),
        &Case {
            file: "keep-cdiffs = \"many\"\n",
            env: &[],
            flags: &[],
        },
    )
    .unwrap_err();
    assert!(e.contains("keep-cdiffs") && e.contains("c.toml"), "{e}");
    // ... also when a flag overrides it: the file is wrong all the same.
    for (file, flags) in [
        ("keep-cdiffs = \"many\"\n", &["--keep-cdiffs", "3"][..]),
        (
            "upstream = \"http://not-a-list\"\n",
            &["--upstream", "http://up"][..],
        ),
        (
            "bootstrap-cdiffs = \"no\"\n",
            &["--no-bootstrap-cdiffs"][..],
        ),
    ] {
        let e = resolve(
            tmp.path(),
            &Case {
                file,
                env: &[],
                flags,
            },
        )
        .unwrap_err();
        assert!(e.contains("c.toml"), "{file}: {e}");
    }
}

#[test]
fn custom_databases_layer_field_by_field_and_render() {
    let tmp = tempfile::tempdir().unwrap();
    let (s, _, text) = resolve(
        tmp.path(),
        &Case {
            file: "[custom.my_db]\nupstream = [\"http://file\"]\nkeys = \"/k.toml\"\n[custom.other]\nsign = false\n",
            env: &[
                ("T_CUSTOM__my_db__UPSTREAM", "http://env-a, http://env-b"),
                ("T_CUSTOM__my_db__SIGN", "no"),
                ("T_CUSTOM__Fresh__KEYS", "/fresh.toml"),
            ],
            flags: &["--upstream", "http://up/"],
        },
    )
    .unwrap();
    let my = &s.custom["my_db"];
    assert_eq!(
        my.upstream.as_deref().unwrap(),
        ["http://env-a", "http://env-b"]
    );
    assert_eq!(my.keys.as_deref(), Some(Path::new("/k.toml")));
    assert_eq!(my.sign, Some(false));
    assert_eq!(s.custom["other"].sign, Some(false));
    assert_eq!(
        s.custom["Fresh"].keys.as_deref(),
        Some(Path::new("/fresh.toml"))
    );
    assert_eq!(s.upstreams, ["http://up"]);
    assert!(
        text.contains("upstream = [\"http://up\"]    # flag --upstream\n"),
        "{text}"
    );
    assert!(text.contains("\n[custom.my_db]\n"), "{text}");
    assert!(
        text.contains("sign = false    # env T_CUSTOM__my_db__SIGN\n"),
        "{text}"
    );
    assert!(text.contains("keys = \"/k.toml\"    # file "), "{text}");
    assert!(
        text.contains("# verify-time is not set    # default\n"),
        "{text}"
    );
    // Without the comments it is a configuration file that resolves to the same.
    let stripped: String = text
        .lines()
        .map(|l| l.split("    #").next().unwrap_or(""))
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let (again, _, _) = resolve(
        tmp.path(),
        &Case {
            file: &stripped,
            env: &[],
            flags: &[],
        },
    )
    .unwrap();
    assert_eq!(again, s, "{stripped}");
}

#[derive(Debug, Parser)]
struct PushCli {
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    push: cli_config::PushArgs,
}

#[test]
fn per_pair_push_keys_layer_and_render_paths_never_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = "TOPSECRET-0123456789abcdef";
    for f in ["a.key", "b.key", "old.key", "new.key"] {
        std::fs::write(tmp.path().join(f), secret).unwrap();
    }
    let p = |f: &str| tmp.path().join(f).display().to_string();
    let file = tmp.path().join("c.toml");
    std::fs::write(
        &file,
        format!(
            "push-sender = [\"tier1={}\", \"tier1={}\"]\npush-downstream = [\"http://[::1]:8081/push={}\", \"http://b.example/push\"]\npush-key = \"{}\"\n",
            p("old.key"),
            p("new.key"),
            p("a.key"),
            p("b.key"),
        ),
    )
    .unwrap();
    let cmd = SPEC.prepare(PushCli::command());
    let m = cmd.clone().try_get_matches_from(["t"]).unwrap();
    let mut layers = Layers::new(&SPEC, &cmd, &[&cmd], &m, Some(&file), Vec::new()).unwrap();
    let s = cli_config::resolve_push(&mut layers, &fetch::HttpSettings::default()).unwrap();
    assert_eq!(
        s.senders,
        [
            ("tier1".to_owned(), PathBuf::from(p("old.key"))),
            ("tier1".to_owned(), PathBuf::from(p("new.key")))
        ]
    );
    assert_eq!(
        s.downstreams,
        [
            (
                "http://[::1]:8081/push".to_owned(),
                Some(PathBuf::from(p("a.key")))
            ),
            ("http://b.example/push".to_owned(), None)
        ]
    );
    assert_eq!(s.key, Some(PathBuf::from(p("b.key"))));
    // The printed configuration names the files, never what they hold; so does the
    // built hub's Debug.
    let out = layers.render();
    assert!(out.contains(&p("a.key")) && !out.contains(secret), "{out}");
    let hub = s.hub(tmp.path()).unwrap();
    assert!(!format!("{hub:?}").contains(secret));

    // A downstream without a key of its own and no push-key is refused.
    std::fs::write(&file, "push-downstream = [\"http://b.example/push\"]\n").unwrap();
    let mut layers = Layers::new(&SPEC, &cmd, &[&cmd], &m, Some(&file), Vec::new()).unwrap();
    let e = cli_config::resolve_push(&mut layers, &fetch::HttpSettings::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("needs a secret"), "{e}");
}

/// `ca-cert` is a repeatable flag, a list or a single string in the file; `proxy` and
/// `no-proxy` are plain strings (`no-proxy` is a setting of its own, not the negation
/// of `proxy`); the printed configuration never shows the proxy's password.
#[test]
fn http_settings_layer_and_the_proxy_password_is_never_printed() {
    let tmp = tempfile::tempdir().unwrap();
    // Real certificates: a CA file is read when the settings are resolved.
    let certs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/clamav-official");
    let a = certs.join("clamav-test-root.crt").display().to_string();
    let b = certs.join("clamav.crt").display().to_string();
    let (s, entries, out) = resolve(
        tmp.path(),
        &Case {
            file: &format!(
                "ca-cert = {a:?}\nproxy = \"http://alice:s3cret@proxy.corp:3128\"\n\
                 no-proxy = \"mirror.lan,.internal\"\n"
            ),
            env: &[],
            flags: &[],
        },
    )
    .unwrap();
    assert_eq!(s.http.ca_certs, [PathBuf::from(&a)]);
    assert_eq!(
        s.http.proxy.as_deref(),
        Some("http://alice:s3cret@proxy.corp:3128")
    );
    assert_eq!(s.http.no_proxy.as_deref(), Some("mirror.lan,.internal"));
    assert!(matches!(source_of(&entries, "proxy"), Source::File(_)));
    assert!(!out.contains("s3cret") && !out.contains("alice"), "{out}");
    assert!(
        out.contains("proxy = \"http://***@proxy.corp:3128\""),
        "{out}"
    );
    assert!(out.contains("no-proxy = \"mirror.lan,.internal\""), "{out}");

    // A list in the file; flags (repeated, or comma-separated) replace it.
    let (s, _, _) = resolve(
        tmp.path(),
        &Case {
            file: &format!("ca-cert = [{a:?}, {b:?}]\n"),
            env: &[],
            flags: &[],
        },
    )
    .unwrap();
    assert_eq!(s.http.ca_certs, [PathBuf::from(&a), PathBuf::from(&b)]);
    let (s, entries, _) = resolve(
        tmp.path(),
        &Case {
            file: &format!("ca-cert = [{a:?}]\nproxy = \"http://file-proxy:1\"\n"),
            env: &[],
            flags: &[
                "--ca-cert",
                &b,
                &format!("--ca-cert={a},{b}"),
                "--proxy",
                "http://flag-proxy:3128",
                "--no-proxy",
                "localhost",
            ],
        },
    )
    .unwrap();
    assert_eq!(
        s.http.ca_certs,
        [PathBuf::from(&b), PathBuf::from(&a), PathBuf::from(&b)]
    );
    assert_eq!(s.http.proxy.as_deref(), Some("http://flag-proxy:3128"));
    assert_eq!(s.http.no_proxy.as_deref(), Some("localhost"));
    assert_eq!(
        source_of(&entries, "no-proxy"),
        Source::Flag("--no-proxy".into())
    );

    // Nothing set: system roots, proxy from the environment.
    let (s, _, _) = resolve(
        tmp.path(),
        &Case {
            file: "",
            env: &[],
            flags: &[],
        },
    )
    .unwrap();
    assert_eq!(s.http, fetch::HttpSettings::default());

    // A CA file that cannot be read is an error now, naming it.
    let missing = tmp.path().join("missing.pem");
    let e = resolve(
        tmp.path(),
        &Case {
            file: "",
            env: &[],
            flags: &["--ca-cert", missing.to_str().unwrap()],
        },
    )
    .unwrap_err();
    assert!(e.contains(missing.to_str().unwrap()), "{e}");

    // A number is neither a path nor a list of them: the file and key are named.
    let e = resolve(
        tmp.path(),
        &Case {
            file: "ca-cert = 5\n",
            env: &[],
            flags: &[],
        },
    )
    .unwrap_err();
    assert!(e.contains("c.toml") && e.contains("ca-cert"), "{e}");
}
