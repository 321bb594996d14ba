//! Tells the switch code whether the compiler's control-flow protection is
//! on, so that landing pads for indirect branches are emitted only where
//! they are checked (and cost nothing elsewhere).
//!
//! rustc exposes no `cfg` for `-Zcf-protection` or `-Zbranch-protection`,
//! so this reads the flags cargo passes to the compiler and sets:
//! - `stackswitch_ibt`: `-Zcf-protection=branch|full` (x86 IBT: `endbr64`);
//! - `stackswitch_bti`: `-Zbranch-protection=...bti...` (AArch64 BTI);
//! - `stackswitch_gcs`: `-Zbranch-protection=...gcs...` (AArch64 Guarded
//!   Control Stack: the switch moves between per-coroutine shadow stacks).

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let flags: Vec<&str> = flags.split('\x1f').collect();
    if let Some(value) = z_option(&flags, "cf-protection") {
        if matches!(value, "branch" | "full") {
            println!("cargo:rustc-cfg=stackswitch_ibt");
        }
    }
    if let Some(value) = z_option(&flags, "branch-protection") {
        if value.split(',').any(|part| part == "bti") {
            println!("cargo:rustc-cfg=stackswitch_bti");
        }
        if value.split(',').any(|part| part == "gcs") {
            println!("cargo:rustc-cfg=stackswitch_gcs");
        }
    }
}

/// The value of the last `-Z<name>=<value>` (or `-Z <name>=<value>`) among
/// the flags: the last one wins, as in rustc.
fn z_option<'a>(flags: &[&'a str], name: &str) -> Option<&'a str> {
    let mut value = None;
    for (i, flag) in flags.iter().enumerate() {
        let option = match flag.strip_prefix("-Z") {
            Some("") => flags.get(i + 1).copied().unwrap_or(""),
            Some(option) => option,
            None => continue,
        };
        if let Some(v) = option.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            value = Some(v);
        }
    }
    value
}
