//! Times every benchmark workload with every tool in one process and prints one table:
//! medians, gradient/primal ratios, how each tool compares with ours, and the targets of the
//! performance issue next to them (docs/performance.md).
//!
//! ```text
//! cargo run --release --example bench_report              # the full table (a few minutes)
//! cargo run --release --example bench_report -- --quick   # fewer samples, for a quick look
//! cargo run --release --example bench_report -- --only gmm    # workloads whose name contains gmm
//! cargo run --release --example bench_report -- --compile-time   # the compile-time target
//! ```
//!
//! Each timing is the median over samples of a batch of calls, after a warm-up; the batch is
//! sized so a sample lasts about a millisecond, so clock resolution does not matter. Inputs
//! come from a fixed-seed generator, so every run times the same data.

#[path = "../benches/workloads/mod.rs"]
mod workloads;

use autodiff::prelude::Sgd;
use std::hint::black_box;
use std::time::{Duration, Instant};
use workloads::*;

struct Options {
    quick: bool,
    only: Option<String>,
    compile_time: bool,
}

fn parse_args() -> Result<Options, String> {
    let mut opts = Options {
        quick: false,
        only: None,
        compile_time: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => opts.quick = true,
            "--only" => opts.only = Some(it.next().ok_or("--only needs a name")?),
            "--compile-time" => opts.compile_time = true,
            "-h" | "--help" => {
                return Err("usage: bench_report [--quick] [--only NAME] [--compile-time]".into())
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(opts)
}

/// The timing loop: warm up, size a batch to about a millisecond, then take the median of
/// the per-call time over many batches (at least `min_samples`, more while within `budget`).
struct Timer {
    budget: Duration,
    min_samples: usize,
    max_samples: usize,
}

impl Timer {
    /// The median time per call, in seconds (not a `Duration`, whose whole nanoseconds would
    /// round the smallest workloads by up to 10%).
    fn median<R>(&self, mut f: impl FnMut() -> R) -> f64 {
        let warm_up = Instant::now();
        let mut calls = 0u64;
        while calls < 3 || warm_up.elapsed() < self.budget / 10 {
            black_box(f());
            calls += 1;
            if warm_up.elapsed() > self.budget {
                break;
            }
        }
        let per_call = warm_up.elapsed().as_secs_f64() / calls as f64;
        let batch = ((1e-3 / per_call) as u64).max(1);
        let mut samples = Vec::new();
        let start = Instant::now();
        while samples.len() < self.min_samples
            || (samples.len() < self.max_samples && start.elapsed() < self.budget)
        {
            let t = Instant::now();
            for _ in 0..batch {
                black_box(f());
            }
            samples.push(t.elapsed().as_secs_f64() / batch as f64);
        }
        samples.sort_by(f64::total_cmp);
        samples[samples.len() / 2]
    }
}

/// What a tool's cell holds.
enum Timing {
    /// Seconds per call.
    Measured(f64),
    /// Extrapolated from part of the work (forward mode: some of the passes).
    Estimated(f64, String),
    Skipped(String),
}

impl Timing {
    fn seconds(&self) -> Option<f64> {
        match self {
            Timing::Measured(d) | Timing::Estimated(d, _) => Some(*d),
            Timing::Skipped(_) => None,
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Tool {
    Primal,
    Ours,
    /// BA only: ours with one `backward` call per Jacobian row instead of `jacobian`.
    OursPerRow,
    Hand,
    /// BA only: the hand-written adjoint computing both Jacobian rows in one body.
    HandRows,
    NumDual,
    Tape,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Primal => "primal",
            Tool::Ours => "ours",
            Tool::OursPerRow => "ours, one `backward` per row",
            Tool::Hand => "hand-written",
            Tool::HandRows => "hand-written, both rows in one body",
            Tool::NumDual => "num-dual",
            Tool::Tape => "reverse (tape)",
        }
    }
}

struct Case {
    name: String,
    inputs: usize,
    /// Whether the grad/primal target (at most 3) applies.
    ratio_target: bool,
    rows: Vec<(Tool, Timing)>,
}

fn fmt_time(s: f64) -> String {
    if s < 1e-6 {
        format!("{:.1} ns", s * 1e9)
    } else if s < 1e-3 {
        format!("{:.2} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.2} s", s)
    }
}

fn fmt_ratio(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}")
    } else if r >= 10.0 {
        format!("{r:.1}")
    } else {
        format!("{r:.2}")
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

fn print_table(cases: &[Case]) {
    println!("| workload | inputs | tool | median | grad/primal | compared with ours | target | |");
    println!("| --- | ---: | --- | ---: | ---: | --- | --- | --- |");
    for case in cases {
        let get = |tool: Tool| {
            case.rows
                .iter()
                .find(|(t, _)| *t == tool)
                .and_then(|(_, timing)| timing.seconds())
        };
        let primal = get(Tool::Primal);
        let ours = get(Tool::Ours);
        for (i, (tool, timing)) in case.rows.iter().enumerate() {
            let label = if i == 0 { case.name.as_str() } else { "" };
            let inputs = if i == 0 {
                case.inputs.to_string()
            } else {
                String::new()
            };
            let median = match timing {
                Timing::Measured(d) => fmt_time(*d),
                Timing::Estimated(d, how) => format!("≈ {} ({how})", fmt_time(*d)),
                Timing::Skipped(why) => format!("skipped ({why})"),
            };
            let t = timing.seconds();
            let ratio = match (tool, t, primal) {
                (Tool::Primal, _, _) => String::new(),
                (_, Some(t), Some(p)) => fmt_ratio(t / p),
                _ => String::new(),
            };
            let (compared, target, met) = match (tool, t, ours) {
                (Tool::Ours, Some(o), _) if case.ratio_target => match primal {
                    Some(p) => (
                        String::new(),
                        "grad/primal ≤ 3".to_string(),
                        verdict(o / p <= 3.0).to_string(),
                    ),
                    None => (String::new(), String::new(), String::new()),
                },
                (Tool::Hand | Tool::HandRows, Some(h), Some(o)) => (
                    format!("ours/hand {}", fmt_ratio(o / h)),
                    "ours/hand ≤ 1.1".to_string(),
                    verdict(o / h <= 1.1).to_string(),
                ),
                (Tool::OursPerRow, Some(t), _) => match get(Tool::Hand) {
                    Some(h) => (
                        format!("this/hand {}", fmt_ratio(t / h)),
                        String::new(),
                        String::new(),
                    ),
                    None => (String::new(), String::new(), String::new()),
                },
                (Tool::NumDual, Some(d), Some(o)) => {
                    let applies = case.inputs >= 10;
                    (
                        format!("ours {}x faster", fmt_ratio(d / o)),
                        if applies {
                            "ours faster (≥ 10 inputs)".to_string()
                        } else {
                            "— (< 10 inputs)".to_string()
                        },
                        if applies {
                            verdict(d > o).to_string()
                        } else {
                            String::new()
                        },
                    )
                }
                (Tool::Tape, Some(tp), Some(o)) => (
                    format!("ours {}x faster", fmt_ratio(tp / o)),
                    "ours ≥ 10x faster".to_string(),
                    verdict(tp / o >= 10.0).to_string(),
                ),
                _ => (String::new(), String::new(), String::new()),
            };
            println!(
                "| {label} | {inputs} | {} | {median} | {ratio} | {compared} | {target} | {met} |",
                tool.name()
            );
        }
    }
}

/// Forward mode needs one pass per input: when all of them would take longer than
/// `limit`, time `passes(k)` for a few `k` and scale up to all `n`.
fn forward_mode(
    timer: &Timer,
    n: usize,
    limit: f64,
    mut passes: impl FnMut(usize) -> f64,
) -> Timing {
    let one = timer.median(|| passes(1));
    if one * n as f64 <= limit {
        return Timing::Measured(timer.median(|| passes(n)));
    }
    let k = ((limit / one) as usize).clamp(1, n);
    let t = timer.median(|| passes(k));
    Timing::Estimated(t * n as f64 / k as f64, format!("from {k} of {n} passes"))
}

fn seed_case(timer: &Timer) -> Case {
    let (x1, x2) = seed::POINT;
    let tape = reverse::Tape::new();
    Case {
        name: "seed ln x1 + x1 x2 - sin x2".into(),
        inputs: 2,
        ratio_target: false,
        rows: vec![
            (
                Tool::Primal,
                Timing::Measured(timer.median(|| seed::seed(black_box(x1), black_box(x2)))),
            ),
            (
                Tool::Ours,
                Timing::Measured(timer.median(|| seed::seed_grad(black_box(x1), black_box(x2)))),
            ),
            (
                Tool::Hand,
                Timing::Measured(timer.median(|| seed::hand_grad(black_box(x1), black_box(x2)))),
            ),
            (
                Tool::NumDual,
                Timing::Measured(timer.median(|| seed::dual_grad(black_box(x1), black_box(x2)))),
            ),
            (
                Tool::Tape,
                Timing::Measured(
                    timer.median(|| seed::tape_grad(&tape, black_box(x1), black_box(x2))),
                ),
            ),
        ],
    }
}

fn rosenbrock_case(timer: &Timer, n: usize) -> Case {
    let x = rosenbrock::input(n);
    let x = &x[..];
    let tape = reverse::Tape::new();
    Case {
        name: format!("Rosenbrock n = {n}"),
        inputs: n,
        ratio_target: true,
        rows: vec![
            (
                Tool::Primal,
                Timing::Measured(timer.median(|| rosenbrock::rosenbrock(black_box(x)))),
            ),
            (
                Tool::Ours,
                Timing::Measured(timer.median(|| rosenbrock::rosenbrock_grad(black_box(x)))),
            ),
            (
                Tool::Hand,
                Timing::Measured(timer.median(|| rosenbrock::hand_grad(black_box(x)))),
            ),
            (
                Tool::NumDual,
                forward_mode(timer, n, 0.5, |k| rosenbrock::dual_grad(black_box(x), k).0),
            ),
            (
                Tool::Tape,
                Timing::Measured(timer.median(|| rosenbrock::tape_grad(&tape, black_box(x)))),
            ),
        ],
    }
}

/// Rosenbrock at n = 2 on a `[f64; 2]`, whose gradient is an array: the slice version's
/// times without the allocation of its gradient vector.
fn rosenbrock_array_case(timer: &Timer) -> Case {
    let x: [f64; 2] = rosenbrock::input(2).try_into().expect("two inputs");
    let x = &x;
    let elsewhere = || Timing::Skipped("see the slice version".into());
    Case {
        name: "Rosenbrock n = 2, `[f64; 2]`".into(),
        inputs: 2,
        ratio_target: true,
        rows: vec![
            (
                Tool::Primal,
                Timing::Measured(timer.median(|| rosenbrock::rosenbrock_array(black_box(x)))),
            ),
            (
                Tool::Ours,
                Timing::Measured(timer.median(|| rosenbrock::rosenbrock_array_grad(black_box(x)))),
            ),
            (
                Tool::Hand,
                Timing::Measured(timer.median(|| rosenbrock::hand_grad_array(black_box(x)))),
            ),
            (Tool::NumDual, elsewhere()),
            (Tool::Tape, elsewhere()),
        ],
    }
}

fn gmm_case(timer: &Timer, d: usize, k: usize, n: usize) -> Case {
    let g = gmm::Gmm::new(d, k, n);
    let tape = reverse::Tape::new();
    // the tape's length grows linearly with the points: measure two small runs
    let nodes = |points: usize| {
        let small = gmm::Gmm {
            n: points,
            ..gmm::Gmm::new(d, k, points)
        };
        gmm::tape_grad(&tape, &small);
        tape.len()
    };
    let (one, two) = (nodes(1), nodes(2));
    let tape_nodes = one + (n - 1) * (two - one);
    // a node of `reverse` is two weights and two indices
    let tape_bytes = tape_nodes * 32;
    let tape_timing = if tape_bytes > 4 << 30 {
        Timing::Skipped(format!(
            "its tape would hold {:.1e} nodes, {} GB",
            tape_nodes as f64,
            tape_bytes >> 30
        ))
    } else {
        Timing::Measured(timer.median(|| gmm::tape_grad(&tape, black_box(&g))))
    };
    tape.clear();
    Case {
        name: format!("GMM d = {d}, k = {k}, n = {n}"),
        inputs: g.params(),
        ratio_target: d == 10 && k == 25,
        rows: vec![
            (
                Tool::Primal,
                Timing::Measured(timer.median(|| black_box(&g).objective())),
            ),
            (
                Tool::Ours,
                Timing::Measured(timer.median(|| black_box(&g).grad_ours())),
            ),
            (
                Tool::Hand,
                Timing::Measured(timer.median(|| gmm::hand_grad(black_box(&g)))),
            ),
            (
                Tool::NumDual,
                forward_mode(timer, g.params(), 2.0, |p| {
                    gmm::dual_grad(black_box(&g), p).0
                }),
            ),
            (Tool::Tape, tape_timing),
        ],
    }
}

fn lstm_case(timer: &Timer, l: usize, c: usize, b: usize) -> Case {
    let s = lstm::Lstm::new(l, c, b);
    let tape = reverse::Tape::new();
    let case = Case {
        name: format!("LSTM l = {l}, b = {b}, c = {c}"),
        inputs: s.params(),
        ratio_target: false,
        rows: vec![
            (
                Tool::Primal,
                Timing::Measured(timer.median(|| black_box(&s).objective())),
            ),
            (
                Tool::Ours,
                Timing::Measured(timer.median(|| black_box(&s).grad_ours())),
            ),
            (
                Tool::Hand,
                Timing::Measured(timer.median(|| lstm::hand_grad(black_box(&s)))),
            ),
            (
                Tool::NumDual,
                forward_mode(timer, s.params(), 2.0, |p| {
                    lstm::dual_grad(black_box(&s), p).0
                }),
            ),
            (
                Tool::Tape,
                Timing::Measured(timer.median(|| lstm::tape_grad(&tape, black_box(&s)))),
            ),
        ],
    };
    tape.clear();
    case
}

fn ba_case(timer: &Timer, n: usize, m: usize, p: usize) -> Case {
    let ba = ba::Ba::new(n, m, p);
    let tape = reverse::Tape::new();
    Case {
        name: format!("BA Jacobian, {p} observations ({n} cameras, {m} points)"),
        inputs: ba::INPUTS,
        ratio_target: false,
        rows: vec![
            (
                Tool::Primal,
                Timing::Measured(timer.median(|| black_box(&ba).objective())),
            ),
            (
                Tool::Ours,
                Timing::Measured(timer.median(|| black_box(&ba).jacobian_ours())),
            ),
            (
                Tool::OursPerRow,
                Timing::Measured(timer.median(|| black_box(&ba).jacobian_ours_per_row())),
            ),
            (
                Tool::Hand,
                Timing::Measured(timer.median(|| ba::jacobian_hand(black_box(&ba)))),
            ),
            (
                Tool::HandRows,
                Timing::Measured(timer.median(|| ba::jacobian_hand_rows(black_box(&ba)))),
            ),
            (
                Tool::NumDual,
                Timing::Measured(timer.median(|| ba::jacobian_dual(black_box(&ba)))),
            ),
            (
                Tool::Tape,
                Timing::Measured(timer.median(|| ba::jacobian_tape(&tape, black_box(&ba)))),
            ),
        ],
    }
}

fn lenet_case(timer: &Timer, n: usize) -> Case {
    let mut ours = lenet::Batch::new(n);
    let mut hand = lenet::Batch::new(n);
    let (mut sgd_ours, mut sgd_hand) = (Sgd::new(0.01), Sgd::new(0.01));
    Case {
        name: format!("LeNet training step, batch {n} (f32)"),
        inputs: lenet::leaves(&ours.params)
            .iter()
            .map(|t| t.data().len())
            .sum(),
        ratio_target: false,
        rows: vec![
            (
                Tool::Primal,
                Timing::Measured(timer.median(|| black_box(&ours).loss())),
            ),
            (
                Tool::Ours,
                Timing::Measured(timer.median(|| ours.step_ours(&mut sgd_ours))),
            ),
            (
                Tool::Hand,
                Timing::Measured(timer.median(|| hand.step_hand(&mut sgd_hand))),
            ),
        ],
    }
}

fn mlp_case(timer: &Timer, inputs: usize, hidden: usize, n: usize) -> Case {
    let d = mlp::Data::new(inputs, hidden, n);
    Case {
        name: format!("MLP {inputs}-{hidden}-1 on nalgebra, batch {n}"),
        inputs: mlp::flat(&d.params).len(),
        ratio_target: false,
        rows: vec![
            (
                Tool::Primal,
                Timing::Measured(timer.median(|| black_box(&d).loss())),
            ),
            (
                Tool::Ours,
                Timing::Measured(timer.median(|| black_box(&d).grad_ours())),
            ),
            (
                Tool::Hand,
                Timing::Measured(timer.median(|| mlp::hand_grad(black_box(&d)))),
            ),
        ],
    }
}

/// Puts the allocator where a long-running program's is after its first iterations, whatever
/// ran before: glibc serves blocks from 128 KiB up with fresh `mmap`s, each page faulted in on
/// first touch, until a freed `mmap`ed block raises that threshold to its own size. Without
/// this, a workload's timings depended on whether an earlier workload of the run had freed a
/// large block (the MLP's 64 × 256 matrices are exactly 128 KiB: 216 µs after the GMM
/// workloads, 440-480 µs when run alone).
fn steady_allocator() {
    black_box(vec![1u8; 16 << 20]);
}

fn main() {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if opts.compile_time {
        if let Err(e) = compile_time::run(opts.quick) {
            eprintln!("{e}");
            std::process::exit(1);
        }
        return;
    }
    steady_allocator();
    let timer = if opts.quick {
        Timer {
            budget: Duration::from_millis(100),
            min_samples: 3,
            max_samples: 21,
        }
    } else {
        Timer {
            budget: Duration::from_millis(600),
            min_samples: 5,
            max_samples: 201,
        }
    };
    type Make<'a> = Box<dyn Fn(&Timer) -> Case + 'a>;
    let all: Vec<(&str, Make)> = vec![
        ("seed", Box::new(seed_case)),
        ("rosenbrock 2", Box::new(|t| rosenbrock_case(t, 2))),
        ("rosenbrock 2 array", Box::new(rosenbrock_array_case)),
        ("rosenbrock 100", Box::new(|t| rosenbrock_case(t, 100))),
        ("rosenbrock 10000", Box::new(|t| rosenbrock_case(t, 10_000))),
        ("gmm 2 5", Box::new(|t| gmm_case(t, 2, 5, 1000))),
        ("gmm 10 25", Box::new(|t| gmm_case(t, 10, 25, 1000))),
        ("gmm 64 200", Box::new(|t| gmm_case(t, 64, 200, 1000))),
        ("lstm", Box::new(|t| lstm_case(t, 2, 1024, 14))),
        ("ba", Box::new(|t| ba_case(t, 20, 200, 500))),
        ("mlp", Box::new(|t| mlp_case(t, 16, 64, 256))),
        ("lenet", Box::new(|t| lenet_case(t, 64))),
    ];
    let mut cases = Vec::new();
    for (key, make) in &all {
        if opts
            .only
            .as_ref()
            .is_some_and(|o| !key.contains(o.as_str()))
        {
            continue;
        }
        let start = Instant::now();
        let case = make(&timer);
        eprintln!("{key}: {:.1} s", start.elapsed().as_secs_f64());
        cases.push(case);
    }
    print_table(&cases);
}

/// The compile-time target: two scratch crates under `target/compile_time/`, the same 100
/// functions of about 20 lines with and without `#[differentiate]`, built in debug mode
/// against this repository by path. Dependencies are built first; then each crate's own
/// rebuild (after touching its source) is timed, a few times, and the medians compared.
mod compile_time {
    use std::path::Path;
    use std::process::Command;
    use std::time::Instant;

    pub const FUNCTIONS: usize = 100;

    /// One function of the template: loops, branches and a dozen primitives, varied by `i`
    /// so no two are alike. (The second loop's bound carries a suffix because the macro
    /// cannot yet infer the type of an unsuffixed literal range's index when it saves it.)
    fn function(i: usize, attribute: bool) -> String {
        let attr = if attribute { "#[differentiate]\n" } else { "" };
        let (c1, c2, c3) = (0.1 + i as f64 * 0.01, 1.0 + i as f64 * 0.1, 3 + i % 4);
        format!(
            r#"{attr}pub fn f{i}(x: &[f64], a: f64, b: f64) -> f64 {{
    let mut s = 0.0;
    let mut p = 1.0;
    for j in 0..x.len() {{
        let v = x[j] * a + {c1:?};
        if v > 0.0 {{
            s += v.sin() * b;
        }} else {{
            s -= (v * v + 1.0).ln();
        }}
        p = p * 0.5 + v.tanh();
    }}
    let q = (a * b).exp() / (1.0 + b * b);
    let r = if s > p {{ s - p }} else {{ p - s }};
    let mut t = q + r * {c2:?};
    for j in 0..{c3}usize {{
        t = t * 0.9 + (t + j as f64).cos();
    }}
    let u = a.hypot(b) + t.abs().sqrt();
    let w = u.max(s).min(p + 10.0);
    s * q + w - r.powi(2) + t * a
}}

"#
        )
    }

    fn write_crate(dir: &Path, repo: &Path, attribute: bool) -> std::io::Result<()> {
        std::fs::create_dir_all(dir.join("src"))?;
        let name = if attribute {
            "with-attribute"
        } else {
            "without-attribute"
        };
        std::fs::write(
            dir.join("Cargo.toml"),
            format!(
                "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
                 [dependencies]\nautodiff = {{ path = {:?} }}\n\n[workspace]\n",
                repo.display().to_string()
            ),
        )?;
        // the workspace's lock file pins the same dependency versions, without the network
        std::fs::copy(repo.join("Cargo.lock"), dir.join("Cargo.lock"))?;
        let mut src = String::from(
            "//! Generated by `bench_report --compile-time`.\n#![allow(unused_imports)]\n\
             use autodiff::prelude::*;\n\n",
        );
        for i in 0..FUNCTIONS {
            src.push_str(&function(i, attribute));
        }
        std::fs::write(dir.join("src/lib.rs"), src)
    }

    fn build(dir: &Path, target: &Path) -> Result<f64, String> {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let start = Instant::now();
        let out = Command::new(cargo)
            .args(["build", "--offline", "--quiet"])
            .current_dir(dir)
            .env("CARGO_TARGET_DIR", target)
            .env_remove("RUSTFLAGS")
            .output()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        let seconds = start.elapsed().as_secs_f64();
        if !out.status.success() {
            return Err(format!(
                "cargo build in {} failed:\n{}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(seconds)
    }

    /// Rebuilds of the crate alone (its source touched), `runs` times; the median.
    fn rebuild(dir: &Path, target: &Path, runs: usize) -> Result<f64, String> {
        let lib = dir.join("src/lib.rs");
        let mut times = Vec::new();
        for _ in 0..runs {
            let text = std::fs::read(&lib).map_err(|e| e.to_string())?;
            std::fs::write(&lib, text).map_err(|e| e.to_string())?;
            times.push(build(dir, target)?);
        }
        times.sort_by(f64::total_cmp);
        Ok(times[times.len() / 2])
    }

    pub fn run(quick: bool) -> Result<(), String> {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = repo.join("target/compile_time");
        let target = root.join("target");
        let (with, without) = (root.join("with"), root.join("without"));
        write_crate(&with, repo, true).map_err(|e| e.to_string())?;
        write_crate(&without, repo, false).map_err(|e| e.to_string())?;
        eprintln!("building the dependencies once (debug) ...");
        build(&without, &target)?;
        build(&with, &target)?;
        let runs = if quick { 1 } else { 5 };
        let plain = rebuild(&without, &target, runs)?;
        let differentiated = rebuild(&with, &target, runs)?;
        let lines = std::fs::read_to_string(with.join("src/lib.rs"))
            .map_err(|e| e.to_string())?
            .lines()
            .count();
        let added = differentiated - plain;
        println!(
            "| crate ({FUNCTIONS} functions, {lines} lines) | debug rebuild (median of {runs}) |"
        );
        println!("| --- | ---: |");
        println!("| without the attribute | {plain:.2} s |");
        println!("| with `#[differentiate]` | {differentiated:.2} s |");
        println!(
            "| added by the attribute | {added:.2} s (target < 5 s: {}) |",
            if added < 5.0 { "met" } else { "**missed**" }
        );
        Ok(())
    }
}
