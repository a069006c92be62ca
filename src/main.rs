//! The `ratchet` binary; everything lives in the library and in `cli`.

mod cli;

fn main() -> std::process::ExitCode {
    // Before anything else: this process may be a `shell` command's exec guard.
    ratchet::engine::tools::exec_guard::dispatch();
    cli::main()
}
