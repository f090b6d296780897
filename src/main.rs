fn main() -> std::process::ExitCode {
    dsrctl::cli::main()
}
