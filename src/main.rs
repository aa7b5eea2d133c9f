//! The `aion` command: the server (default) and tool subcommands.

use std::process::ExitCode;

use clap::Parser;

use aion::server::flags::{CheckCommand, Cli, Command, TestCommand};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [cmd, rest @ ..] = args.as_slice() {
        if cmd == "tsdb" {
            return aion::backfill::run_cli(rest);
        }
    }
    let cli = Cli::parse();
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
