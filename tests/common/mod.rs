//! Helpers shared by integration tests that run themselves in a child
//! process (to see an abort, a fatal signal, or a process's first unwind).

use std::process::Command;

/// A command that runs this test binary again. Binaries of another CPU run
/// under an emulator that the host cannot start implicitly (no binfmt), so
/// CI names it in `STACKSWITCH_TEST_RUNNER`, as cargo's runner.
pub fn this_test_binary() -> Command {
    let exe = std::env::current_exe().expect("path of the test binary");
    match std::env::var("STACKSWITCH_TEST_RUNNER") {
        Ok(runner) if !runner.trim().is_empty() => {
            let mut words = runner.split_whitespace();
            let mut command = Command::new(words.next().unwrap());
            command.args(words).arg(exe);
            command
        }
        _ => Command::new(exe),
    }
}
