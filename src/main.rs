//! The `ratchet` binary; everything lives in the library and in `cli`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
