//! Lines for a person on standard output and standard error that never panic: `println!` and
//! `eprintln!` do when the stream is a closed pipe (`baton wait ... 2>&1 | head -1`, a log
//! shipper restarting), which would turn a command's answer into exit 101. A line that cannot
//! be written is dropped; the exit code still says what happened.

/// `println!` that drops the line if standard output is gone.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `eprintln!` that drops the line if standard error is gone.
macro_rules! err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
