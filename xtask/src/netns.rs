//! What a root harness leaves on the machine under fixed names, and its removal.
//!
//! `cargo xtask tiers` builds its network under fixed names (namespaces `tiers-*`, the
//! bridge `tiersbr0`, veths `tiersv<i>`) and keeps its state in `$TMPDIR/xtask-tiers-*`.
//! A run stopped by a signal removes them itself (module `interrupt`), but a run
//! killed with `SIGKILL` (or a machine crash before the namespaces are gone) leaves
//! them, and with them its processes: a namespace with a process inside outlives
//! `ip netns del`, and so does its veth, so the next `ip link add` fails with
//! "RTNETLINK answers: File exists". A [`Footprint`] names everything a harness
//! creates, finds what is left ([`Footprint::leftovers`]), and removes it: processes
//! first (those inside the namespaces and those started on the state directories),
//! then namespaces, then links, then, at the start of a run only, the state
//! directories.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::interrupt;

/// How long stale processes get to exit after `SIGTERM` before `SIGKILL`.
const GRACE: Duration = Duration::from_secs(3);

/// Everything a harness creates under its own fixed names.
#[derive(Debug, Clone)]
pub struct Footprint {
    /// Names the harness in messages (`tiers`).
    pub tool: &'static str,
    /// Network namespaces.
    pub namespaces: Vec<String>,
    /// Links in the root namespace (bridge, host ends of veths).
    pub links: Vec<String>,
    /// Prefix of the harness's state directories directly under
    /// `std::env::temp_dir()`.
    pub state_prefix: &'static str,
    /// Programs the harness runs (`comm` names); one of them with an argument under a
    /// state directory is the harness's own, wherever it runs.
    pub programs: &'static [&'static str],
}

/// What a [`Footprint`] finds on the machine.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// Live processes inside the namespaces or working on the state directories.
    pub processes: Vec<u32>,
    /// Namespaces that exist.
    pub namespaces: Vec<String>,
    /// Links that exist.
    pub links: Vec<String>,
    /// State directories that exist.
    pub dirs: Vec<PathBuf>,
}

impl Leftovers {
    /// Nothing is left.
    pub fn is_empty(&self) -> bool {
        *self == Leftovers::default()
    }
}

impl std::fmt::Display for Leftovers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if !self.processes.is_empty() {
            parts.push(format!("processes {:?}", self.processes));
        }
        if !self.namespaces.is_empty() {
            parts.push(format!("namespaces {}", self.namespaces.join(" ")));
        }
        if !self.links.is_empty() {
            parts.push(format!("links {}", self.links.join(" ")));
        }
        if !self.dirs.is_empty() {
            let d: Vec<String> = self.dirs.iter().map(|d| d.display().to_string()).collect();
            parts.push(format!("directories {}", d.join(" ")));
        }
        if parts.is_empty() {
            f.write_str("nothing")
        } else {
            f.write_str(&parts.join("; "))
        }
    }
}

impl Footprint {
    /// What of this footprint exists now.
    pub fn leftovers(&self) -> Leftovers {
        let listed = |args: &[&str]| -> Vec<String> {
            Command::new("ip")
                .args(args)
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect()
        };
        let namespaces: Vec<String> = listed(&["netns", "list"])
            .iter()
            .filter_map(|l| netns_name(l))
            .filter(|n| self.namespaces.iter().any(|m| m == n))
            .map(str::to_owned)
            .collect();
        let links: Vec<String> = listed(&["-o", "link", "show"])
            .iter()
            .filter_map(|l| link_name(l))
            .filter(|n| self.links.iter().any(|m| m == n))
            .map(str::to_owned)
            .collect();
        let mut processes: Vec<u32> = self
            .namespaces
            .iter()
            .flat_map(|ns| listed(&["netns", "pids", ns]))
            .filter_map(|l| l.trim().parse().ok())
            .chain(self.state_processes())
            .filter(|&p| p != std::process::id() && interrupt::is_live(p))
            .collect();
        processes.sort_unstable();
        processes.dedup();
        Leftovers {
            processes,
            namespaces,
            links,
            dirs: self.state_dirs(),
        }
    }

    /// The state directories (`$TMPDIR/<state_prefix>*`).
    fn state_dirs(&self) -> Vec<PathBuf> {
        let Ok(rd) = std::fs::read_dir(std::env::temp_dir()) else {
            return Vec::new();
        };
        let mut dirs: Vec<PathBuf> = rd
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with(self.state_prefix))
                    && e.file_type().is_ok_and(|t| t.is_dir())
            })
            .map(|e| e.path())
            .collect();
        dirs.sort();
        dirs
    }

    /// Processes of [`Footprint::programs`] with an argument under one of the state
    /// directories (the origin server runs outside the namespaces, on
    /// `--dir <state>/origin`).
    fn state_processes(&self) -> Vec<u32> {
        let prefix = std::env::temp_dir().join(self.state_prefix);
        let prefix = prefix.to_string_lossy().into_owned();
        let Ok(rd) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| {
                let pid: u32 = e.file_name().to_str()?.parse().ok()?;
                let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
                if !self.programs.contains(&comm.trim_end()) {
                    return None;
                }
                let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
                cmdline
                    .split(|&b| b == 0)
                    .any(|arg| String::from_utf8_lossy(arg).starts_with(&prefix))
                    .then_some(pid)
            })
            .collect()
    }

    /// Stops the processes and removes the namespaces and links (not the state
    /// directories: a failed run keeps its logs there). Quiet; what cannot be removed
    /// shows in [`Footprint::leftovers`].
    pub fn remove(&self) {
        interrupt::stop_processes(|| self.leftovers().processes, GRACE);
        let quiet = |args: &[&str]| {
            let _ = Command::new("ip")
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        let left = self.leftovers();
        for ns in &left.namespaces {
            quiet(&["netns", "del", ns]);
        }
        // Deleting a namespace deletes the veths inside it and, with them, their host
        // ends; what is still there (a bridge, a veth whose namespace outlived
        // `netns del`) goes by name.
        for link in &self.leftovers().links {
            quiet(&["link", "del", link]);
        }
    }

    /// At the start of a run: removes whatever an earlier run left (processes,
    /// namespaces, links and state directories, logs of a failed run included),
    /// saying so, and fails when something stays.
    pub fn clear_stale(&self) -> Result<()> {
        let left = self.leftovers();
        if left.is_empty() {
            return Ok(());
        }
        println!("{}: removing what an earlier run left: {left}", self.tool);
        self.remove();
        for d in &left.dirs {
            std::fs::remove_dir_all(d).with_context(|| format!("removing {}", d.display()))?;
        }
        let still = self.leftovers();
        if !still.is_empty() {
            bail!("cannot remove what an earlier run left: {still}");
        }
        Ok(())
    }
}

/// The name in a line of `ip netns list`: `tiers-t1 (id: 0)` or `tiers-t1`.
fn netns_name(line: &str) -> Option<&str> {
    line.split_whitespace().next()
}

/// The name in a line of `ip -o link show`: `7: tiersv0@if2: <BROADCAST,...>` (a veth
/// names its peer after `@`).
fn link_name(line: &str) -> Option<&str> {
    let name = line.split(": ").nth(1)?;
    name.split('@').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_names_ip_lists() {
        assert_eq!(netns_name("tiers-t1 (id: 0)"), Some("tiers-t1"));
        assert_eq!(netns_name("tiers-t3d"), Some("tiers-t3d"));
        assert_eq!(netns_name(""), None);
        assert_eq!(
            link_name("7: tiersv0@if2: <BROADCAST,MULTICAST,UP> mtu 1500 master tiersbr0"),
            Some("tiersv0")
        );
        assert_eq!(
            link_name("3: tiersbr0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500"),
            Some("tiersbr0")
        );
        assert_eq!(link_name("garbage"), None);
    }

    #[test]
    fn leftovers_say_what_is_left() {
        assert!(Leftovers::default().is_empty());
        assert_eq!(Leftovers::default().to_string(), "nothing");
        let l = Leftovers {
            processes: vec![42],
            namespaces: vec!["tiers-t1".into()],
            links: vec!["tiersbr0".into(), "tiersv0".into()],
            dirs: vec![PathBuf::from("/tmp/xtask-tiers-x")],
        };
        assert!(!l.is_empty());
        assert_eq!(
            l.to_string(),
            "processes [42]; namespaces tiers-t1; links tiersbr0 tiersv0; \
             directories /tmp/xtask-tiers-x"
        );
    }

    /// Without root or `ip`, nothing of a footprint whose names nobody uses is found.
    #[test]
    fn an_unused_footprint_has_no_leftovers() {
        let fp = Footprint {
            tool: "test",
            namespaces: vec!["xtask-netns-test-unused".into()],
            links: vec!["xtnsunused0".into()],
            state_prefix: "xtask-netns-test-unused-",
            programs: &["sigserver"],
        };
        assert_eq!(fp.leftovers(), Leftovers::default());
    }
}
