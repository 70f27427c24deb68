//! What the CLI test binaries share.

use std::ffi::OsStr;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::process::{Child, Command, Output};

/// A `sluice` process a test started. It is killed and reaped when the test ends, also when
/// the test fails half-way (a plain `Child` is not): a failed test leaves no gateway behind
/// holding its port and a core while the rest of the suite runs.
pub(crate) struct Running(Option<Child>);

impl Running {
    /// Starts `command`.
    pub(crate) fn spawn(command: &mut Command) -> Running {
        Running(Some(command.spawn().expect("cannot start sluice")))
    }

    /// Waits for the process to exit on its own and collects what it wrote.
    #[allow(
        dead_code,
        reason = "each test binary compiles this module; not all of them read output"
    )]
    pub(crate) fn wait_with_output(mut self) -> std::io::Result<Output> {
        self.0.take().expect("still running").wait_with_output()
    }
}

impl Deref for Running {
    type Target = Child;

    fn deref(&self) -> &Child {
        self.0.as_ref().expect("still running")
    }
}

impl DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        self.0.as_mut().expect("still running")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A child already reaped (`wait` returned) is not signalled again.
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A folder of its own under the system's temporary folder, for one test: it and all it holds
/// are removed when this is dropped, when the test ends, also when it fails half-way. Its name
/// starts with the prefix given, so one left behind (a killed test binary) names its test.
/// Reads as the folder's path.
pub(crate) struct TempFolder(tempfile::TempDir);

impl TempFolder {
    /// A new, empty folder named `prefix` and a random tail.
    pub(crate) fn new(prefix: &str) -> TempFolder {
        TempFolder(
            tempfile::Builder::new()
                .prefix(prefix)
                .tempdir()
                .expect("cannot create a temporary folder"),
        )
    }
}

impl Deref for TempFolder {
    type Target = Path;

    fn deref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<Path> for TempFolder {
    fn as_ref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<OsStr> for TempFolder {
    fn as_ref(&self) -> &OsStr {
        self.0.path().as_os_str()
    }
}
