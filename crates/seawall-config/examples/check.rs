//! Prints the diagnostics of the config files given as arguments, like `seawall check`.

fn main() {
    for arg in std::env::args().skip(1) {
        match seawall_config::load(std::path::Path::new(&arg)) {
            Ok(_) => println!("{arg}: ok"),
            Err(diagnostics) => println!("{diagnostics}"),
        }
    }
}
