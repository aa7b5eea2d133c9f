//! The `aion` command.

use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!("usage: aion test promql FILE...");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => {
            println!("aion {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        [cmd, sub, files @ ..] if cmd == "test" && sub == "promql" => {
            if files.is_empty() {
                return usage();
            }
            let summary = aion::promql::promqltest::run_files(files);
            print!("{}", aion::promql::promqltest::format_summary(&summary));
            if summary.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        _ => usage(),
    }
}
