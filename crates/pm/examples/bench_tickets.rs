//! Prints `bench::run` with the default options as JSON (what `livefarm bench tickets` shows).

fn main() {
    match livefarm_pm::bench::run(livefarm_pm::bench::BenchOptions::default()) {
        Ok(report) => match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("cannot print report: {e}"),
        },
        Err(e) => eprintln!("bench failed: {e}"),
    }
}
