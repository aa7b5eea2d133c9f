//! The `aion` command.

fn main() {
    println!("aion {}", env!("CARGO_PKG_VERSION"));
}
