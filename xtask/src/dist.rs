//! `cargo xtask dist`: the Debian package and the OCI image.
//!
//! * `target/dist/clamav-mirror_<version>_<arch>.deb`, built with `dpkg-deb` from a
//!   staged tree: both binaries in `/usr/bin`, the units of `packaging/systemd/` in
//!   `/usr/lib/systemd/system`, the example configurations of `packaging/debian/` as
//!   conffiles in `/etc/clamav-mirror`, man pages and bash/zsh/fish completions that
//!   the binaries generate from their own clap definitions (hidden
//!   `--generate-assets DIR`), README.Debian, copyright, maintainer scripts.
//! * `target/dist/clamav-mirror-<version>.oci.tar`, built without a daemon by
//!   `buildah` (from scratch: the two binaries, exactly the shared libraries `ldd`
//!   lists, `/etc/passwd` with a non-root user, CA certificates; no shell, no package
//!   manager), committed and pushed to an `oci-archive:`. Skipped with a message when
//!   `buildah` is missing, or with `--no-image`.
//!
//! The binaries are taken from cargo's own target directory ([`target_dir`]:
//! `CARGO_TARGET_DIR` when set), the artefacts go to `<root>/target/dist`.
//!
//! `cargo xtask dist-check` and `cargo xtask image-check` (module `dist_check`) prove
//! both artefacts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};

/// The package and image name.
pub const NAME: &str = "clamav-mirror";
/// The version of the workspace (every crate shares it).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The units shipped (file names under `packaging/systemd/`).
pub const UNITS: [&str; 3] = [
    "clamav-mirror.service",
    "sigserver.service",
    "sigupdate-watch.service",
];
/// The binaries shipped.
pub const BINS: [&str; 2] = ["sigserver", "sigupdate"];
/// UID and GID of the image's user.
pub const IMAGE_UID: u32 = 10001;

/// Options of `cargo xtask dist`.
#[derive(Debug, Clone)]
pub struct Opts {
    /// Cargo profile the binaries are built with (`release` or `dev`).
    pub profile: String,
    /// Build the OCI image too.
    pub image: bool,
}

impl Opts {
    /// Parses `[--profile P] [--no-image]`.
    pub fn parse(args: &[String]) -> Result<Opts> {
        let mut o = Opts {
            profile: "release".to_owned(),
            image: true,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--profile" => o.profile = it.next().context("--profile needs a value")?.clone(),
                "--no-image" => o.image = false,
                other => bail!("unknown argument {other:?}"),
            }
        }
        Ok(o)
    }
}

/// Runs `cmd`, failing with its name when it does not succeed.
pub fn run(cmd: &mut Command) -> Result<()> {
    let st = cmd
        .status()
        .with_context(|| format!("running {:?}", cmd.get_program()))?;
    ensure!(st.success(), "{cmd:?} failed: {st}");
    Ok(())
}

/// Runs `cmd` and returns its standard output.
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("running {:?}", cmd.get_program()))?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `target/dist` of the workspace.
pub fn dist_dir(root: &Path) -> PathBuf {
    root.join("target").join("dist")
}

/// Cargo's target directory for the workspace at `root`, as `cargo metadata` reports
/// it (honouring `CARGO_TARGET_DIR` and `build.target-dir`).
pub fn target_dir(root: &Path) -> Result<PathBuf> {
    let json = output(Command::new(env!("CARGO")).current_dir(root).args([
        "metadata",
        "--format-version",
        "1",
        "--no-deps",
        "--locked",
    ]))?;
    let v: serde_json::Value =
        serde_json::from_str(&json).context("reading the output of cargo metadata")?;
    let dir = v["target_directory"]
        .as_str()
        .context("cargo metadata reports no target_directory")?;
    Ok(PathBuf::from(dir))
}

/// The Debian architecture of this machine (`amd64`, `arm64`, ...).
pub fn deb_arch() -> Result<String> {
    Ok(output(Command::new("dpkg").arg("--print-architecture"))?
        .trim()
        .to_owned())
}

/// Path of the package `cargo xtask dist` builds.
pub fn deb_path(root: &Path) -> Result<PathBuf> {
    Ok(dist_dir(root).join(format!("{NAME}_{VERSION}_{}.deb", deb_arch()?)))
}

/// Path of the OCI archive `cargo xtask dist` builds.
pub fn image_path(root: &Path) -> PathBuf {
    dist_dir(root).join(format!("{NAME}-{VERSION}.oci.tar"))
}

/// `cargo xtask dist`.
pub fn dist(root: &Path, opts: &Opts) -> Result<()> {
    let t = Instant::now();
    run(Command::new(env!("CARGO"))
        .current_dir(root)
        .args(["build", "--locked", "-p", "sigserver", "-p", "sigupdate"])
        .args(["--profile", &opts.profile]))?;
    println!(
        "== built the binaries ({} profile) in {:.0?}",
        opts.profile,
        t.elapsed()
    );
    let profile_dir = if opts.profile == "dev" {
        "debug"
    } else {
        &opts.profile
    };
    // Where cargo put them: `CARGO_TARGET_DIR` or `build.target-dir` may move the
    // target directory away from `<root>/target` (stale or missing binaries there).
    let bin_dir = target_dir(root)?.join(profile_dir);
    for b in BINS {
        ensure!(
            bin_dir.join(b).is_file(),
            "{} not found after the build",
            bin_dir.join(b).display()
        );
    }
    let out = dist_dir(root);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let t = Instant::now();
    // xz makes the smaller package; gzip is several times faster on the larger
    // binaries of a dev build (CI).
    let compress = if opts.profile == "dev" { "gzip" } else { "xz" };
    let deb = build_deb(root, &bin_dir, compress)?;
    let size = std::fs::metadata(&deb)?.len();
    println!(
        "== {} ({} KiB) in {:.1?}",
        deb.display(),
        size / 1024,
        t.elapsed()
    );
    if !opts.image {
        return Ok(());
    }
    if Command::new("buildah").arg("--version").output().is_err() {
        println!("== no buildah: OCI image skipped (apt-get install buildah)");
        return Ok(());
    }
    let t = Instant::now();
    let image = build_image(root, &out.join("deb-root"))?;
    let size = std::fs::metadata(&image)?.len();
    println!(
        "== {} ({} KiB) in {:.1?}",
        image.display(),
        size / 1024,
        t.elapsed()
    );
    Ok(())
}

fn fresh_dir(p: &Path) -> Result<()> {
    if p.exists() {
        std::fs::remove_dir_all(p).with_context(|| format!("removing {}", p.display()))?;
    }
    std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))
}

fn copy(from: &Path, to: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", to.display()))
}

/// Stages the package tree in `target/dist/deb-root` and builds the `.deb`.
fn build_deb(root: &Path, bin_dir: &Path, compress: &str) -> Result<PathBuf> {
    let out = dist_dir(root);
    let stage = out.join("deb-root");
    fresh_dir(&stage)?;
    let pkg = root.join("packaging");
    // Binaries, stripped (the dev profile's debug information is most of their size).
    for b in BINS {
        let dst = stage.join("usr/bin").join(b);
        copy(&bin_dir.join(b), &dst, 0o755)?;
        run(Command::new("strip").arg("--strip-unneeded").arg(&dst))?;
    }
    // Man pages and completions, generated by the binaries from their clap definitions.
    let assets = out.join("assets");
    fresh_dir(&assets)?;
    for b in BINS {
        output(
            Command::new(stage.join("usr/bin").join(b))
                .arg("--generate-assets")
                .arg(&assets),
        )?;
    }
    let man1 = stage.join("usr/share/man/man1");
    std::fs::create_dir_all(&man1)?;
    for e in std::fs::read_dir(assets.join("man"))? {
        let p = e?.path();
        let name = p.file_name().context("man page name")?.to_owned();
        copy(&p, &man1.join(&name), 0o644)?;
        // -n: no name or time stamp in the archive, so builds are reproducible.
        run(Command::new("gzip")
            .args(["-9", "-n", "-f"])
            .arg(man1.join(name)))?;
    }
    let c = assets.join("completions");
    for b in BINS {
        // (file clap_complete wrote, where the shell looks for it, name it looks for)
        for (file, dir, installed) in [
            (
                format!("{b}.bash"),
                "usr/share/bash-completion/completions",
                b.to_string(),
            ),
            (
                format!("_{b}"),
                "usr/share/zsh/vendor-completions",
                format!("_{b}"),
            ),
            (
                format!("{b}.fish"),
                "usr/share/fish/vendor_completions.d",
                format!("{b}.fish"),
            ),
        ] {
            copy(&c.join(file), &stage.join(dir).join(installed), 0o644)?;
        }
    }
    for u in UNITS {
        copy(
            &pkg.join("systemd").join(u),
            &stage.join("usr/lib/systemd/system").join(u),
            0o644,
        )?;
    }
    let mut conffiles = String::new();
    for c in ["sigserver.toml", "sigupdate.toml"] {
        copy(
            &pkg.join("debian").join(c),
            &stage.join("etc/clamav-mirror").join(c),
            0o644,
        )?;
        conffiles.push_str(&format!("/etc/clamav-mirror/{c}\n"));
    }
    let doc = stage.join("usr/share/doc").join(NAME);
    for d in ["README.Debian", "copyright"] {
        copy(&pkg.join("debian").join(d), &doc.join(d), 0o644)?;
    }
    let control = stage.join("DEBIAN");
    for s in ["postinst", "prerm", "postrm"] {
        copy(&pkg.join("debian").join(s), &control.join(s), 0o755)?;
    }
    std::fs::write(control.join("conffiles"), conffiles)?;
    let installed_kib = output(
        Command::new("du")
            .args(["-sk", "--exclude=DEBIAN"])
            .arg(&stage),
    )?
    .split_whitespace()
    .next()
    .unwrap_or("0")
    .to_owned();
    let arch = deb_arch()?;
    let control_text = format!(
        "Package: {NAME}\n\
         Version: {VERSION}\n\
         Architecture: {arch}\n\
         Maintainer: clamav-mirror developers <clamav-mirror@example.invalid>\n\
         Installed-Size: {installed_kib}\n\
         Depends: libc6 (>= 2.34), libgcc-s1\n\
         Section: net\n\
         Priority: optional\n\
         Homepage: https://example.invalid/clamav-mirror\n\
         Description: verified ClamAV signature mirror (sigupdate, sigserver)\n \
         sigupdate fetches every new version of the ClamAV signature databases,\n \
         verifies signatures, .sign files and cdiff chains, and publishes complete\n \
         snapshots atomically; sigserver serves them to freshclam clients over\n \
         HTTP/1.1, HTTP/2 and TLS, with /health, /ready and /metrics. systemd units,\n \
         man pages and shell completions included.\n"
    );
    std::fs::write(control.join("control"), control_text)?;
    let deb = deb_path(root)?;
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", &format!("-Z{compress}"), "--build"])
        .arg(&stage)
        .arg(&deb))?;
    Ok(deb)
}

/// Shared libraries `ldd` lists for `bin` (absolute paths as the loader finds them).
fn needed_libs(bin: &Path) -> Result<Vec<PathBuf>> {
    let text = output(Command::new("ldd").arg(bin))?;
    ensure!(
        !text.contains("not found"),
        "{} needs a library this machine lacks:\n{text}",
        bin.display()
    );
    let libs = parse_ldd(&text);
    ensure!(
        !libs.is_empty(),
        "ldd listed no libraries for {}",
        bin.display()
    );
    Ok(libs)
}

/// The library paths in `ldd` output.
fn parse_ldd(text: &str) -> Vec<PathBuf> {
    let mut libs = Vec::new();
    for line in text.lines() {
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` or
        // `/lib64/ld-linux-x86-64.so.2 (0x...)`; the vDSO has no file.
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(p));
        }
    }
    libs
}

/// Builds the image's root file system in `target/dist/image-root` from the staged
/// package tree, then the image with buildah.
fn build_image(root: &Path, deb_root: &Path) -> Result<PathBuf> {
    let out = dist_dir(root);
    let rootfs = out.join("image-root");
    fresh_dir(&rootfs)?;
    for b in BINS {
        let bin = deb_root.join("usr/bin").join(b);
        copy(&bin, &rootfs.join("usr/bin").join(b), 0o755)?;
        for lib in needed_libs(&bin)? {
            // Copy the file the path resolves to, under the path the loader asks for.
            let rel = lib.strip_prefix("/").context("library path")?;
            copy(&std::fs::canonicalize(&lib)?, &rootfs.join(rel), 0o755)?;
        }
    }
    let etc = rootfs.join("etc");
    std::fs::create_dir_all(&etc)?;
    std::fs::write(
        etc.join("passwd"),
        format!(
            "root:x:0:0:root:/nonexistent:/usr/sbin/nologin\n\
             {NAME}:x:{IMAGE_UID}:{IMAGE_UID}:{NAME}:/var/lib/{NAME}:/usr/sbin/nologin\n"
        ),
    )?;
    std::fs::write(
        etc.join("group"),
        format!("root:x:0:\n{NAME}:x:{IMAGE_UID}:\n"),
    )?;
    std::fs::write(etc.join("nsswitch.conf"), "hosts: files dns\n")?;
    let ca = Path::new("/etc/ssl/certs/ca-certificates.crt");
    if ca.exists() {
        copy(ca, &etc.join("ssl/certs/ca-certificates.crt"), 0o644)?;
    } else {
        println!("   (no {}: image without CA certificates)", ca.display());
    }
    let state = out.join("image-state");
    fresh_dir(&state)?;

    // buildah with its own storage under target/dist (vfs: no overlay mounts needed).
    let storage = out.join("buildah");
    let buildah = || {
        let mut c = Command::new("buildah");
        c.arg("--root")
            .arg(storage.join("root"))
            .arg("--runroot")
            .arg(storage.join("run"))
            .args(["--storage-driver", "vfs"]);
        c
    };
    let ctr = output(buildah().args(["from", "--quiet", "scratch"]))?
        .trim()
        .to_owned();
    let result = (|| -> Result<PathBuf> {
        run(buildah()
            .args(["copy", "--quiet", &ctr])
            .arg(&rootfs)
            .arg("/"))?;
        let state_path = format!("/var/lib/{NAME}");
        run(buildah()
            .args([
                "copy",
                "--quiet",
                "--chown",
                &format!("{IMAGE_UID}:{IMAGE_UID}"),
            ])
            .arg(&ctr)
            .arg(&state)
            .arg(&state_path))?;
        run(buildah()
            .args(["config", "--user", &format!("{IMAGE_UID}:{IMAGE_UID}")])
            .args(["--workingdir", &state_path])
            .args(["--entrypoint", r#"["/usr/bin/sigserver","--sync"]"#])
            .args(["--env", &format!("SIGSERVER_DIR={state_path}")])
            .args(["--env", "SIGSERVER_LISTEN=0.0.0.0:8080"])
            .args(["--env", "SIGSERVER_UPSTREAM=https://database.clamav.net"])
            .args(["--env", "SIGSERVER_DB=daily,main,bytecode"])
            .args(["--env", "SIGUPDATE_DIR=/var/lib/clamav-mirror"])
            .args(["--port", "8080", "--volume", &state_path])
            .args(["--label", &format!("org.opencontainers.image.title={NAME}")])
            .args([
                "--label",
                &format!("org.opencontainers.image.version={VERSION}"),
            ])
            .arg(&ctr))?;
        let tag = format!("localhost/{NAME}:{VERSION}");
        run(buildah()
            .args(["commit", "--quiet", "--format", "oci", "--rm"])
            .arg(&ctr)
            .arg(&tag))?;
        let archive = image_path(root);
        let _ = std::fs::remove_file(&archive);
        run(buildah().args(["push", "--quiet", &tag]).arg(format!(
            "oci-archive:{}:{NAME}:{VERSION}",
            archive.display()
        )))?;
        run(buildah().args(["rmi", "--force", &tag]))?;
        Ok(archive)
    })();
    if result.is_err() {
        let _ = buildah().args(["rm", &ctr]).output();
    }
    result
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
mod tests {
    use super::*;

    /// This test binary was built into cargo's target directory (`CARGO_TARGET_DIR`
    /// when set): `target_dir` must name the same one.
    #[test]
    fn the_target_directory_is_where_cargo_built_this_test() {
        let dir = target_dir(&crate::workspace_root()).unwrap();
        let exe = std::env::current_exe().unwrap();
        assert!(
            exe.starts_with(&dir),
            "{} is not under {}",
            exe.display(),
            dir.display()
        );
    }

    #[test]
    fn ldd_output_gives_the_loader_and_the_resolved_libraries() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f88)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f88)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f88)\n";
        assert_eq!(
            parse_ldd(text),
            [
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn options_default_to_release_with_the_image() {
        let o = Opts::parse(&[]).unwrap();
        assert_eq!((o.profile.as_str(), o.image), ("release", true));
        let args = ["--profile", "dev", "--no-image"].map(String::from);
        let o = Opts::parse(&args).unwrap();
        assert_eq!((o.profile.as_str(), o.image), ("dev", false));
        assert!(Opts::parse(&["--bogus".to_owned()]).is_err());
        assert!(Opts::parse(&["--profile".to_owned()]).is_err());
    }
}
