//! The sync lock: exclusive, PID recorded, and recovered at once after SIGKILL.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use mirror_core::Error;
use mirror_core::lock::SyncLock;

const CHILD_ENV: &str = "MIRROR_CORE_TEST_LOCK_HOLDER";

/// Not a test: the process `killed_holder_releases_the_lock` starts (this test binary,
/// with `--ignored` and the environment variable set) takes the lock, reports ready and
/// waits to be killed. Ignored, so that it never counts as a passing test; run by hand
/// without the variable it fails.
#[test]
#[ignore = "the lock holder of killed_holder_releases_the_lock, run only by it"]
fn lock_holder_child() {
    let path = std::env::var_os(CHILD_ENV)
        .map(PathBuf::from)
        .expect("run only by killed_holder_releases_the_lock, which sets the lock path");
    let _lock = SyncLock::acquire(&path).expect("child takes the lock");
    std::fs::write(path.with_extension("ready"), b"1").expect("write ready marker");
    // Holding the lock until SIGKILL is the whole job (no state is read here).
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// A module path without its crate (`tests::lock` → `lock`): how the harness names tests.
fn harness_path(module: &str) -> &str {
    module.split_once("::").map_or("", |(_, rest)| rest)
}

#[test]
fn killed_holder_releases_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sync.lock");
    let mut child = Command::new(std::env::current_exe().unwrap())
        // The name as the harness lists it (`lock::lock_holder_child` in the grouped
        // test binary), matched exactly so that no other test runs in the child.
        .args([
            "--exact",
            "--ignored",
            &format!("{}::lock_holder_child", harness_path(module_path!())),
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let ready = path.with_extension("ready");
    testkit::wait::until(
        "the child to take the lock",
        Duration::from_secs(60),
        || {
            let exited = child.try_wait().unwrap();
            assert!(exited.is_none(), "the lock holder exited: {exited:?}");
            ready.exists()
        },
    );
    match SyncLock::acquire(&path) {
        Err(Error::LockHeld { pid, .. }) => assert_eq!(pid, Some(child.id())),
        other => panic!("expected LockHeld, got {other:?}"),
    }
    let err = SyncLock::acquire(&path).unwrap_err();
    assert!(
        err.to_string().contains(&format!("pid {}", child.id())),
        "{err}"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // The dead holder's PID is still in the file, but the kernel released the lock.
    assert_eq!(SyncLock::holder_pid(&path), Some(child.id()));
    let lock = SyncLock::acquire(&path).expect("lock recovered after SIGKILL");
    assert_eq!(SyncLock::holder_pid(lock.path()), Some(std::process::id()));
}

#[test]
fn two_handles_in_one_process_exclude_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sync.lock");
    let a = SyncLock::acquire(&path).unwrap();
    assert!(matches!(
        SyncLock::acquire(&path),
        Err(Error::LockHeld { .. })
    ));
    drop(a);
    SyncLock::acquire(&path).unwrap();
}
