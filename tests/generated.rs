//! Gradients of 500 generated functions, each checked at several random points against
//! forward-mode `Dual<f64>` evaluation and against central finite differences (see
//! `tests/generator/` and docs/testing.md).
//!
//! `tests/generated/cases.rs` is written by the generator for its default seed and committed,
//! so that every `cargo test` compiles the same functions; `committed_cases_are_up_to_date`
//! fails if it drifts from what the generator produces.

#[path = "generator/mod.rs"]
mod generator;

#[path = "generator/harness.rs"]
mod harness;

#[rustfmt::skip]
#[path = "generated/cases.rs"]
mod cases;

// pasted as the failure message prints them, like the generated cases
#[rustfmt::skip]
#[path = "generated/regressions.rs"]
mod regressions;

/// Random points per function.
const POINTS: usize = 5;

fn options() -> harness::Options {
    harness::Options {
        seed: cases::SEED,
        batch: cases::BATCH,
        points: POINTS,
        source: cases::SOURCE,
        reproduce: format!(
            "cargo test --test generated (or cargo run --release --example gradient_fuzz -- \
             --seed {} --count {} --batch-size {})",
            cases::SEED,
            cases::CASES.len(),
            cases::CASES.len()
        ),
    }
}

#[test]
fn generated_gradients_match_forward_mode_and_finite_differences() {
    assert!(
        cases::CASES.len() >= 500,
        "at least 500 generated functions"
    );
    let report = harness::check_all(cases::CASES, &options());
    println!("seed {}: {}", cases::SEED, report.summary());
    // finite differences must actually check most components, or the test proves little
    assert!(
        report.fd_checked * 10 >= (report.fd_checked + report.fd_skipped) * 9,
        "too many components skipped at branch changes: {}",
        report.summary()
    );
    assert!(
        report.failures.is_empty(),
        "{}\n\n{}",
        report.failures.join("\n\n"),
        report.summary()
    );
}

#[test]
fn regression_cases_still_match() {
    let options = harness::Options {
        seed: 0,
        batch: 0,
        points: POINTS,
        source: include_str!("generated/regressions.rs"),
        reproduce: "cargo test --test generated regression_cases".to_string(),
    };
    let report = harness::check_all(regressions::CASES, &options);
    assert!(
        report.failures.is_empty(),
        "{}\n\n{}",
        report.failures.join("\n\n"),
        report.summary()
    );
}

#[test]
fn failure_messages_carry_the_source_of_the_function_and_its_callees() {
    // the last function that calls another one
    let case = cases::CASES
        .iter()
        .rev()
        .find(|c| {
            harness::function_source(cases::SOURCE, c.name)
                .matches("#[differentiate")
                .count()
                > 1
        })
        .expect("some generated function calls another");
    let source = harness::function_source(cases::SOURCE, case.name);
    assert!(source.contains(&format!("fn {}<", case.name)), "{source}");
    assert!(!source.contains("fn run_"), "{source}");
    let snippet = harness::regression_snippet(cases::SOURCE, case.name);
    assert!(
        snippet.contains(&format!("fn vjp_{}(", case.name)),
        "{snippet}"
    );
    assert!(
        snippet.contains(&format!("Case {{ name: \"{}\"", case.name)),
        "{snippet}"
    );
}

// The checker itself: a wrong gradient must be caught, a jump inside the stencil skipped.

fn square<T: num_traits::Float>(p: &[T]) -> Vec<T> {
    vec![p[0] * p[0] + p[1]]
}

fn square_with_error<const PPB: u32>(p: &[f64], _: &[f64]) -> (Vec<f64>, Vec<f64>) {
    // the gradient off by PPB parts per billion
    let scale = 1.0 + f64::from(PPB) * 1e-9;
    (square(p), vec![2.0 * p[0] * scale, 1.0])
}

fn staircase<T: num_traits::Float>(p: &[T]) -> Vec<T> {
    // steps 1e-4 apart: every finite-difference stencil (h = 1e-3) crosses one
    let k = T::from(1e4).unwrap();
    vec![(p[0] * k).floor() / k + p[0]]
}

fn staircase_vjp(p: &[f64], _: &[f64]) -> (Vec<f64>, Vec<f64>) {
    (staircase(p), vec![1.0])
}

fn steep<T: num_traits::Float>(p: &[T]) -> Vec<T> {
    // sin(200 x): the truncation error of fourth-order differences at h = 1e-3, relative to
    // the derivative's scale 200, is up to (200 h)^4 / 30 = 5e-5, over the tolerance; at a
    // tenth of the step 5e-9
    vec![(p[0] * T::from(200.0).unwrap()).sin()]
}

fn steep_vjp<const WRONG: u32>(p: &[f64], _: &[f64]) -> (Vec<f64>, Vec<f64>) {
    // d/dx sin(200 x) = 200 cos(200 x); WRONG adds that many parts per thousand
    let scale = 1.0 + f64::from(WRONG) * 1e-3;
    (steep(p), vec![200.0 * (200.0 * p[0]).cos() * scale])
}

fn check_one(case: harness::Case) -> harness::Report {
    let options = harness::Options {
        seed: 1,
        batch: 0,
        points: POINTS,
        source: "",
        reproduce: String::new(),
    };
    harness::check_all(&[case], &options)
}

#[test]
fn the_checker_catches_wrong_gradients_and_skips_jumps() {
    let case = |vjp: harness::Vjp| harness::Case {
        name: "square",
        inputs: 2,
        active: &[0, 1],
        outputs: 1,
        probe: square::<harness::Probe>,
        dual: square::<autodiff::Dual<f64>>,
        vjp,
    };
    let exact = check_one(case(square_with_error::<0>));
    assert!(exact.failures.is_empty(), "{:?}", exact.failures);
    assert_eq!(exact.fd_checked, 2 * POINTS);
    // 1e-7 relative: below the finite-difference tolerance, caught by forward mode
    let slightly_off = check_one(case(square_with_error::<100>));
    assert!(
        slightly_off.failures[0].contains("forward mode (Dual)"),
        "{:?}",
        slightly_off.failures
    );
    let staircase = check_one(harness::Case {
        name: "staircase",
        inputs: 1,
        active: &[0],
        outputs: 1,
        probe: staircase::<harness::Probe>,
        dual: staircase::<autodiff::Dual<f64>>,
        vjp: staircase_vjp,
    });
    assert!(staircase.failures.is_empty(), "{:?}", staircase.failures);
    assert_eq!((staircase.fd_checked, staircase.fd_skipped), (0, POINTS));
}

#[test]
fn a_steep_function_is_compared_at_a_tenth_of_the_step() {
    let case = |vjp: harness::Vjp| harness::Case {
        name: "steep",
        inputs: 1,
        active: &[0],
        outputs: 1,
        probe: steep::<harness::Probe>,
        dual: steep::<autodiff::Dual<f64>>,
        vjp,
    };
    let exact = check_one(case(steep_vjp::<0>));
    assert!(exact.failures.is_empty(), "{:?}", exact.failures);
    assert_eq!(exact.fd_checked, POINTS);
    assert!(exact.fd_refined > 0, "{}", exact.summary());
    assert!(exact.worst_fd <= harness::FD_TOLERANCE);
    // a wrong derivative stays wrong at any step (forward mode reports it first)
    let wrong = check_one(case(steep_vjp::<1>));
    assert_eq!(wrong.failures.len(), 1, "{:?}", wrong.failures);
}

#[test]
fn the_generator_is_deterministic() {
    for bugs in [generator::KnownBugs::default(), generator::KnownBugs::ALL] {
        let a = generator::render(7, 3, 40, bugs, "crate::harness");
        let b = generator::render(7, 3, 40, bugs, "crate::harness");
        assert!(a == b, "the same seed must give the same functions");
        // one attribute per function, and one more on the block of each method
        let blocks = a.matches("\nimpl M").count();
        assert!(blocks > 0, "some functions are methods");
        assert!(a.matches("#[differentiate").count() == 40 + blocks);
    }
}

#[test]
fn committed_cases_are_up_to_date() {
    let expected = generator::render(
        generator::DEFAULT_SEED,
        0,
        generator::DEFAULT_COUNT,
        generator::KnownBugs::default(),
        "crate::harness",
    );
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/generated/cases.rs");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == expected,
        "{path} is not what the generator writes for seed {}; regenerate it with `{}`",
        generator::DEFAULT_SEED,
        generator::REGENERATE
    );
}
