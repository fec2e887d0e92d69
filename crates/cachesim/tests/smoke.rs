use cachesim::{simulate, simulate_with, CacheConfig, Scenario, SimOptions, SimPlan};

#[test]
fn smoke() {
    let plan = SimPlan::small();
    for cfg in CacheConfig::all_named() {
        for seed in 0..3 {
            match simulate(&plan, &cfg, seed) {
                Ok(r) => println!("{r}"),
                Err(v) => panic!("{v}"),
            }
            let o = SimOptions {
                scenario: Scenario::PurgatoryOnly,
                ..SimOptions::default()
            };
            if let Err(v) = simulate_with(&plan, &cfg, seed, &o) {
                panic!("{v}");
            }
        }
    }
}
