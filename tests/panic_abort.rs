//! With `-C panic=abort` a suspended coroutine cannot be unwound: dropping
//! one (or a generator) must abort with a message, and `force_unwind` must
//! panic (which aborts, with the panic's message). The library and a small
//! child program (`tests/panic_abort/child.rs`) are built for it here, with
//! the host's cargo and rustc, in a target directory of their own.
#![cfg(all(unix, feature = "default-stack", feature = "unwind"))]

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Builds the library and the child with `panic=abort`, once.
fn child() -> &'static Path {
    static CHILD: OnceLock<PathBuf> = OnceLock::new();
    CHILD.get_or_init(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("panic-abort");
        let cargo = option_env!("CARGO").unwrap_or("cargo");
        let status = Command::new(cargo)
            .args(["build", "--lib", "--quiet", "--manifest-path"])
            .arg(manifest.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .env("RUSTFLAGS", "-C panic=abort")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET")
            .status()
            .unwrap();
        assert!(status.success(), "building the library with panic=abort");
        let deps = target.join("debug").join("deps");
        let exe = target.join("child");
        let status = Command::new("rustc")
            .args([
                "--edition",
                "2021",
                "-C",
                "panic=abort",
                "--crate-type",
                "bin",
            ])
            .arg(manifest.join("tests/panic_abort/child.rs"))
            .arg("--extern")
            .arg(format!(
                "stackswitch={}",
                target.join("debug").join("libstackswitch.rlib").display()
            ))
            .arg("-L")
            .arg(format!("dependency={}", deps.display()))
            .arg("-o")
            .arg(&exe)
            .status()
            .unwrap();
        assert!(status.success(), "building the child with panic=abort");
        exe
    })
}

/// Runs the child; `None` where it cannot be built and run here (a binary
/// of another target, run under an emulator).
fn run(what: &str) -> Option<Output> {
    if std::env::var("STACKSWITCH_TEST_RUNNER").is_ok_and(|r| !r.trim().is_empty()) {
        eprintln!("skipped: the child is built for the host only");
        return None;
    }
    Some(Command::new(child()).arg(what).output().unwrap())
}

fn assert_aborted_with(output: &Output, message: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGABRT),
        "{:?}; stderr:\n{stderr}",
        output.status
    );
    assert!(stderr.contains(message), "stderr:\n{stderr}");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("survived"));
}

#[test]
#[cfg_attr(
    miri,
    ignore = "builds with cargo and rustc and starts a child process (Miri runs none)"
)]
fn dropping_a_suspended_coroutine_aborts_with_a_message() {
    if let Some(output) = run("drop") {
        assert_aborted_with(
            &output,
            "stackswitch: fatal: a suspended coroutine was dropped",
        );
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "builds with cargo and rustc and starts a child process (Miri runs none)"
)]
fn dropping_a_suspended_generator_aborts_with_a_message() {
    if let Some(output) = run("drop-generator") {
        assert_aborted_with(
            &output,
            "stackswitch: fatal: a suspended coroutine was dropped",
        );
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "builds with cargo and rustc and starts a child process (Miri runs none)"
)]
fn force_unwind_panics_with_a_message() {
    if let Some(output) = run("force_unwind") {
        assert_aborted_with(
            &output,
            "can't unwind a suspended coroutine without the \"unwind\" feature",
        );
    }
}
