//! The `infergate` binary: parse, call the library, map the outcome to an exit code.

use clap::Parser as _;
use infergate::cli::{BaselineCommand, Cli, Command};
use infergate::exit;
use infergate::progress::Verbosity;

fn main() {
    let cli = Cli::parse();
    init_logging(cli.quiet, cli.verbose);
    let verbosity = if cli.quiet { Verbosity::Quiet } else { Verbosity::Normal };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(exit::RUN_FAILED);
        }
    };
    let outcome = runtime.block_on(async {
        match &cli.command {
            Command::Run(args) => infergate::app::run(args, verbosity).await,
            Command::Sim(args) => infergate::app::sim(args).await,
            Command::Demo(args) => infergate::app::demo(args, verbosity).await,
            Command::Doctor(args) => infergate::app::doctor(args).await,
            Command::Compare(args) => infergate::app::gate::compare_cmd(args),
            Command::Check(args) => infergate::app::gate::check(args, verbosity).await,
            Command::Baseline(BaselineCommand::Update(args)) => infergate::app::gate::baseline_update(args),
            Command::Baseline(BaselineCommand::Show(args)) => infergate::app::gate::baseline_show(args),
            Command::Calibrate(args) => infergate::app::gate::calibrate(args, verbosity).await,
            Command::Comment(args) => infergate::app::publish::comment(args).await,
            Command::Merge(args) => infergate::app::publish::merge(args),
            Command::Report(args) => infergate::app::report::report(args),
            Command::Export(args) => infergate::app::export::export(args, verbosity),
            Command::History(cmd) => infergate::app::history::run(cmd),
        }
    });
    // Don't wait for stray tasks (e.g. a request still draining) on the way out.
    runtime.shutdown_background();
    let code = match outcome {
        Ok(code) => code,
        Err(failure) => {
            // The message may quote a server or a file: made inert for the terminal and CI log.
            eprintln!("error: {}", infergate::text::for_log(&failure.to_string()));
            failure.code()
        }
    };
    std::process::exit(code);
}

fn init_logging(quiet: bool, verbose: u8) {
    let level = match (quiet, verbose) {
        (true, _) => tracing::Level::ERROR,
        (false, 0) => tracing::Level::WARN,
        (false, 1) => tracing::Level::DEBUG,
        (false, _) => tracing::Level::TRACE,
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(|| LogWriter)
        .with_ansi(false)
        .with_max_level(level)
        .with_target(false)
        .try_init();
}

/// Log lines to stderr, made inert (they can quote a server's error): each
/// event arrives as one write.
struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(infergate::text::for_log(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
