//! The `aion` command.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [cmd, rest @ ..] if cmd == "tsdb" => aion::backfill::run_cli(rest),
        _ => {
            println!("aion {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
    }
}
