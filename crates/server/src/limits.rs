//! Process limits a server needs raised before it accepts connections.
//!
//! Every connection is an open file. Linux starts most processes with a soft limit of 1,024
//! open files (the hard limit is usually far higher), which a server reaches at about a
//! thousand clients, then fails every `accept` with `EMFILE`. `lithosd` raises its soft
//! limit to the hard one at start, as nginx and Prosody do; an embedder can call
//! [`raise_open_file_limit`] itself.

use std::io;

/// The open-file limits of this process, before and after [`raise_open_file_limit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenFileLimit {
    /// The soft limit before the call.
    pub was: u64,
    /// The soft limit now.
    pub now: u64,
    /// The hard limit: the most an unprivileged process may set.
    pub hard: u64,
}

/// Raises this process's soft limit on open files to its hard limit (or to `cap`, if lower,
/// and only ever upwards). Returns the limits, so the caller can log them.
///
/// ```
/// let l = lithos_server::limits::raise_open_file_limit(None).expect("getrlimit");
/// assert!(l.now >= l.was && l.now <= l.hard);
/// ```
pub fn raise_open_file_limit(cap: Option<u64>) -> io::Result<OpenFileLimit> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let current = getrlimit(Resource::Nofile);
    // `None` means unlimited.
    let hard = current.maximum.unwrap_or(u64::MAX);
    let was = current.current.unwrap_or(u64::MAX);
    let want = cap.map_or(hard, |c| c.min(hard));
    if want <= was {
        return Ok(OpenFileLimit {
            was,
            now: was,
            hard,
        });
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(want),
            maximum: current.maximum,
        },
    )
    .map_err(io::Error::from)?;
    Ok(OpenFileLimit {
        was,
        now: want,
        hard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_goes_up_to_the_cap_and_never_down() {
        let start = raise_open_file_limit(Some(0)).expect("getrlimit");
        assert_eq!(
            start.now, start.was,
            "a cap below the current limit lowers nothing"
        );
        // Lower the soft limit a little (always allowed), then raise it back by a cap.
        let lower = start.was.min(65_536).saturating_sub(1).max(64);
        rustix::process::setrlimit(
            rustix::process::Resource::Nofile,
            rustix::process::Rlimit {
                current: Some(lower),
                maximum: (start.hard != u64::MAX).then_some(start.hard),
            },
        )
        .expect("lowering the soft limit");
        let target = (lower + 1).min(start.hard);
        let raised = raise_open_file_limit(Some(target)).expect("raise");
        assert_eq!(raised.was, lower);
        assert_eq!(raised.now, target);
        let seen = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        assert_eq!(seen.current, Some(target));
        // Put it back to the hard limit for the rest of the test binary.
        raise_open_file_limit(None).expect("restore");
    }
}
