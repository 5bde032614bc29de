//! The `vaced` binary: everything happens in the library; this maps errors to exit codes.

fn main() -> std::process::ExitCode {
    match vaced::cli::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("vaced: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
