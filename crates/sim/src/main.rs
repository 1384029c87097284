//! `fulcrum-sim`: compares every balancing algorithm on named scenarios in
//! virtual time and prints Markdown tables (deterministic for a seed).
//!
//! ```text
//! cargo run --release -p fulcrum-sim -- --scenario all --seed 1
//! ```

use clap::builder::PossibleValuesParser;
use clap::Parser;
use fulcrum_sim::scenarios;

#[derive(Debug, Parser)]
#[command(
    name = "fulcrum-sim",
    about = "Simulate Fulcrum's balancing algorithms on modelled instances (virtual time, seeded)",
    after_help = "Each scenario runs every algorithm for 60 virtual seconds and prints a \
                  Markdown table. See docs/SIMULATION.md."
)]
struct Args {
    /// Scenario to run, or `all`.
    #[arg(
        long,
        default_value = "all",
        value_parser = PossibleValuesParser::new(
            std::iter::once("all")
                .chain(scenarios::NAMES)
                .chain([
                    scenarios::dynamic::NAME,
                    scenarios::limits::NAME,
                    scenarios::registry_default::NAME,
                    scenarios::classes::NAME,
                ])
        ),
    )]
    scenario: String,
    /// Seed for every random choice; the output is identical for a seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() {
    let args = Args::parse();
    let chosen = if args.scenario == "all" {
        scenarios::all(args.seed)
    } else {
        // The parser only lets known names through.
        scenarios::by_name(&args.scenario, args.seed)
            .into_iter()
            .collect()
    };
    println!(
        "## fulcrum-sim — seed {}, {} virtual seconds per run\n",
        args.seed,
        scenarios::DURATION_MS / 1000
    );
    for s in chosen {
        println!("{}", s.markdown());
    }
    if args.scenario == "all" || args.scenario == scenarios::limits::NAME {
        println!("{}", scenarios::limits::markdown(args.seed));
    }
    if args.scenario == "all" || args.scenario == scenarios::dynamic::NAME {
        println!("{}", scenarios::dynamic::markdown(args.seed));
    }
    if args.scenario == "all" || args.scenario == scenarios::registry_default::NAME {
        println!("{}", scenarios::registry_default::markdown(args.seed));
    }
    if args.scenario == "all" || args.scenario == scenarios::classes::NAME {
        println!("{}", scenarios::classes::markdown(args.seed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Args::command().debug_assert();
    }

    #[test]
    fn every_listed_scenario_exists() {
        for name in scenarios::NAMES {
            assert!(scenarios::by_name(name, 1).is_some(), "{name}");
        }
        assert_eq!(scenarios::all(1).len(), scenarios::NAMES.len());
    }
}
