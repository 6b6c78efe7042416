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

/// Raises this process's soft limit on open files to its hard limit (never lowers it).
/// Returns the limits, so the caller can log them.
///
/// ```
/// let l = lithos_server::limits::raise_open_file_limit().expect("getrlimit");
/// assert!(l.now >= l.was && l.now == l.hard);
/// ```
pub fn raise_open_file_limit() -> io::Result<OpenFileLimit> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let current = getrlimit(Resource::Nofile);
    // `None` means unlimited.
    let hard = current.maximum.unwrap_or(u64::MAX);
    let was = current.current.unwrap_or(u64::MAX);
    if hard > was {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: current.maximum,
                maximum: current.maximum,
            },
        )
        .map_err(io::Error::from)?;
    }
    Ok(OpenFileLimit {
        was,
        now: was.max(hard),
        hard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

    #[test]
    fn the_soft_limit_goes_up_to_the_hard_one() {
        let start = raise_open_file_limit().expect("getrlimit");
        // Lower the soft limit (always allowed), then raise it again.
        let lower = start.now.min(65_536) - 1;
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(lower),
                maximum: getrlimit(Resource::Nofile).maximum,
            },
        )
        .expect("lowering the soft limit");
        let raised = raise_open_file_limit().expect("raise");
        assert_eq!(raised.was, lower);
        assert_eq!(raised.now, start.hard);
        assert_eq!(getrlimit(Resource::Nofile).current, Some(start.hard));
        // Already at the hard limit: nothing changes.
        let again = raise_open_file_limit().expect("again");
        assert_eq!((again.was, again.now), (start.hard, start.hard));
    }
}
