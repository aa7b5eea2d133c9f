//! The `aion` command: the server (default) and tool subcommands.

use std::process::ExitCode;

use clap::Parser;

use aion::server::flags::{CheckCommand, Cli, Command, TestCommand};

/// Caps the C library allocator's arenas at one per core (at least two) unless the
/// environment sets its own limit. glibc's default of eight arenas per core lets a
/// server with many query and scrape threads spread long-lived series data over a
/// dozen or more 64 MiB arenas, each keeping freed memory resident: in the load test
/// resident memory grew without levelling off, and per active series it cost about
/// 10% more. Must run before any other thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some()
        || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("arena_max"))
    {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let arenas = libc::c_int::try_from(cores.max(2)).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt only changes the allocator's tuning parameters; it is called
    // while the process still has a single thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

/// Seconds between two returns of freed heap memory to the operating system, unless
/// `AION_MALLOC_TRIM_SECS` says otherwise (0 turns it off).
const MALLOC_TRIM_SECS: u64 = 10;

/// Starts a thread that hands the C library allocator's free memory back to the
/// operating system every few seconds. glibc gives back only the free space at the top
/// of a heap; memory freed inside it (what a query over many series leaves behind, for
/// one) stays resident until the same process reuses it. In the scrape benchmark one
/// `count({job="fake"})` over 50,000 series left about 20 MB, some 400 bytes per
/// series, resident for good. `malloc_trim` releases the free pages inside the heaps
/// too; on a heap of a few hundred MiB it takes well under a millisecond.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn start_malloc_trimmer() {
    let secs = match std::env::var("AION_MALLOC_TRIM_SECS") {
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                eprintln!(
                    "aion: ignoring AION_MALLOC_TRIM_SECS={v:?}: not a whole number of seconds"
                );
                MALLOC_TRIM_SECS
            }
        },
        Err(_) => MALLOC_TRIM_SECS,
    };
    if secs == 0 {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("malloc-trim".into())
        .spawn(move || loop {
            std::thread::sleep(std::time::Duration::from_secs(secs));
            // SAFETY: malloc_trim takes the allocator's own locks and only releases
            // free memory; it is safe to call from any thread at any time.
            unsafe {
                libc::malloc_trim(0);
            }
        });
    if let Err(e) = spawned {
        eprintln!("aion: not returning freed memory periodically: {e}");
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn start_malloc_trimmer() {}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [cmd, rest @ ..] = args.as_slice() {
        if cmd == "tsdb" {
            return aion::backfill::run_cli(rest);
        }
    }
    let cli = Cli::parse();
    if cli.command.is_none() {
        start_malloc_trimmer();
    }
    match cli.command {
        None => match aion::server::run(cli.server) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("aion: {e}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Test {
            what: TestCommand::Promql { files },
        }) => {
            let summary = aion::promql::promqltest::run_files(&files);
            print!("{}", aion::promql::promqltest::format_summary(&summary));
            if summary.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Some(Command::Test {
            what: TestCommand::Rules { files },
        }) => {
            let (report, ok) = aion::rules::unittest::run_files(&files);
            print!("{report}");
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Some(Command::Check {
            what: CheckCommand::Rules { files },
        }) => {
            let (report, ok) = aion::rules::check_files(&files);
            print!("{report}");
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Some(Command::Check {
            what: CheckCommand::WebConfig { files },
        }) => {
            if aion::server::webconfig::check_files(&files) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Some(Command::Check {
            what: CheckCommand::Config { files },
        }) => {
            if aion::server::check_config_files(&files) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
