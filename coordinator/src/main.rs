//! `ws-coordinator` entry point.
fn main() {
    eprintln!("ws-coordinator: not implemented yet");
    std::process::exit(2);
}
