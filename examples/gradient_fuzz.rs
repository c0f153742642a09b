//! Generates any number of random differentiable functions, compiles them in batches and
//! checks every gradient against forward mode and finite differences (docs/testing.md).
//!
//! ```text
//! cargo run --release --example gradient_fuzz -- --seed 7 --count 20000
//! cargo run --release --example gradient_fuzz -- --write-cases   # rewrite tests/generated/cases.rs
//! ```
//!
//! Options: `--seed S` (default: the seed of the committed cases), `--count N` (default
//! 20000), `--batch-size B` functions per compiled crate (default 1000), `--points P` random
//! points per function (default 5), `--only-batch K` to rerun one batch of a run,
//! `--timeout SECONDS` for running one batch (default 900), `--keep` to keep going after a batch that fails to build, `--known-bugs` to also generate
//! the constructs of `generator::KnownBugs`, `--autodiff PATH` to test another checkout of
//! this repository (e.g. `git archive HEAD` unpacked somewhere), `--emit FILE` to only write
//! the source of batch `--only-batch K` (default 0) to `FILE`.
//!
//! Each batch is written as `src/cases.rs` of a scratch crate in `target/gradient_fuzz/`
//! (depending on this repository by absolute path, and sharing `tests/generator/harness.rs`
//! with the test target), built in release mode with `opt-level = 0` and run.

#[path = "../tests/generator/mod.rs"]
mod generator;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

struct Args {
    seed: u64,
    count: usize,
    batch_size: usize,
    points: usize,
    only_batch: Option<u64>,
    keep: bool,
    write_cases: bool,
    bugs: generator::KnownBugs,
    autodiff: Option<PathBuf>,
    timeout: u64,
    emit: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        seed: generator::DEFAULT_SEED,
        count: 20_000,
        batch_size: 1000,
        points: 5,
        only_batch: None,
        keep: false,
        write_cases: false,
        bugs: generator::KnownBugs::default(),
        autodiff: None,
        timeout: 900,
        emit: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            it.next()
                .ok_or_else(|| format!("{name} needs a value"))?
                .parse::<u64>()
                .map_err(|e| format!("{name}: {e}"))
        };
        match flag.as_str() {
            "--seed" => args.seed = value("--seed")?,
            "--count" => args.count = value("--count")? as usize,
            "--batch-size" => args.batch_size = (value("--batch-size")? as usize).max(1),
            "--points" => args.points = value("--points")? as usize,
            "--only-batch" => args.only_batch = Some(value("--only-batch")?),
            "--keep" => args.keep = true,
            "--timeout" => args.timeout = value("--timeout")?,
            "--known-bugs" => args.bugs = generator::KnownBugs::ALL,
            "--emit" => args.emit = Some(PathBuf::from(it.next().ok_or("--emit needs a path")?)),
            "--autodiff" => {
                args.autodiff = Some(PathBuf::from(
                    it.next().ok_or("--autodiff needs a path")?,
                ))
            }
            "--write-cases" => args.write_cases = true,
            "-h" | "--help" => {
                return Err(
                    "usage: gradient_fuzz [--seed S] [--count N] [--batch-size B] \
                     [--points P] [--only-batch K] [--keep] [--known-bugs] [--autodiff PATH] [--timeout SECONDS] [--emit FILE] | --write-cases"
                        .to_string(),
                )
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    if args.write_cases {
        let path = repo.join("tests/generated/cases.rs");
        let text = generator::render(
            generator::DEFAULT_SEED,
            0,
            generator::DEFAULT_COUNT,
            generator::KnownBugs::default(),
            "crate::harness",
        );
        std::fs::write(&path, text).expect("write the cases file");
        println!(
            "wrote {} ({} functions, seed {})",
            path.display(),
            generator::DEFAULT_COUNT,
            generator::DEFAULT_SEED
        );
        return ExitCode::SUCCESS;
    }

    if let Some(path) = &args.emit {
        // the source of one batch, for reading or reducing a failure
        let batch = args.only_batch.unwrap_or(0);
        let count = args
            .batch_size
            .min(args.count.saturating_sub(batch as usize * args.batch_size));
        let text = generator::render(args.seed, batch, count, args.bugs, "crate::harness");
        std::fs::write(path, text).expect("write the batch");
        println!(
            "wrote batch {batch} of seed {} to {}",
            args.seed,
            path.display()
        );
        return ExitCode::SUCCESS;
    }
    let dir = repo.join("target/gradient_fuzz");
    let autodiff = args.autodiff.clone().unwrap_or_else(|| repo.to_path_buf());
    if let Err(e) = write_crate(repo, &autodiff, &dir) {
        eprintln!("cannot write the scratch crate in {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    let batches = args.count.div_ceil(args.batch_size) as u64;
    let start = Instant::now();
    let (mut build_secs, mut run_secs) = (0.0, 0.0);
    let mut totals = Totals::default();
    let mut build_failures = Vec::new();
    // the generated code must not warn in the user's crate (users build with -D warnings)
    let mut warning_batches = Vec::new();
    for batch in 0..batches {
        if args.only_batch.is_some_and(|b| b != batch) {
            continue;
        }
        let count = args
            .batch_size
            .min(args.count - batch as usize * args.batch_size);
        let source = generator::render(args.seed, batch, count, args.bugs, "crate::harness");
        std::fs::write(dir.join("src/cases.rs"), source).expect("write cases.rs");
        let t = Instant::now();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let build = Command::new(&cargo)
            .args(["build", "--release", "--quiet"])
            .current_dir(&dir)
            .env("CARGO_TARGET_DIR", dir.join("target"))
            .output()
            .expect("run cargo build");
        build_secs += t.elapsed().as_secs_f64();
        if !build.status.success() {
            let stderr = String::from_utf8_lossy(&build.stderr);
            let head: String = stderr.lines().take(80).collect::<Vec<_>>().join("\n");
            println!(
                "BUILD FAILURE in batch {batch} (seed {}): the generated crate does not compile; \
                 reproduce with --seed {} --count {} --batch-size {} --only-batch {batch}\n{head}",
                args.seed, args.seed, args.count, args.batch_size
            );
            build_failures.push(batch);
            if !args.keep {
                break;
            }
            continue;
        }
        let stderr = String::from_utf8_lossy(&build.stderr);
        // warnings about the generated functions (not about the harness around them)
        if stderr
            .lines()
            .any(|line| line.trim_start().starts_with("--> src/cases.rs"))
        {
            let head: String = stderr.lines().take(40).collect::<Vec<_>>().join("\n");
            println!(
                "WARNINGS in batch {batch} (seed {}): the generated crate compiles with warnings; \
                 reproduce with --seed {} --count {} --batch-size {} --only-batch {batch}\n{head}",
                args.seed, args.seed, args.count, args.batch_size
            );
            warning_batches.push(batch);
        }
        let t = Instant::now();
        let reproduce = format!(
            "cargo run --release --example gradient_fuzz -- --seed {} --count {} --batch-size {} --only-batch {batch}",
            args.seed, args.count, args.batch_size
        );
        let run = run_with_timeout(
            Command::new(dir.join("target/release/gradient-fuzz-batch"))
                .args([
                    args.seed.to_string(),
                    batch.to_string(),
                    args.points.to_string(),
                    reproduce,
                ])
                .env("GRADIENT_FUZZ_TRACE", "1"),
            std::time::Duration::from_secs(args.timeout),
        );
        run_secs += t.elapsed().as_secs_f64();
        let stdout = String::from_utf8_lossy(&run.stdout);
        let mut parsed = false;
        for line in stdout.lines() {
            if let Some(rest) = line.strip_prefix("TOTALS ") {
                totals.add(rest);
                parsed = true;
            } else {
                println!("{line}");
            }
        }
        if !parsed {
            // the harness names each case on stderr before checking it
            let stderr = String::from_utf8_lossy(&run.stderr);
            let last = stderr
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix("checking "))
                .unwrap_or("?");
            let what = if run.timed_out {
                format!("did not finish within {} s", args.timeout)
            } else {
                format!("stopped with {}", run.status)
            };
            let tail: Vec<&str> = stderr
                .lines()
                .filter(|l| !l.starts_with("checking "))
                .collect();
            println!(
                "MISMATCH: batch {batch} (seed {}) {what} while checking `{last}`; reproduce with \
                 --seed {} --count {} --batch-size {} --only-batch {batch}\n{}",
                args.seed,
                args.seed,
                args.count,
                args.batch_size,
                tail[tail.len().saturating_sub(20)..].join("\n")
            );
            totals.mismatches += 1;
        }
        println!(
            "batch {batch}: {count} functions, {} mismatches so far, {:.0} s",
            totals.mismatches,
            start.elapsed().as_secs_f64()
        );
    }
    println!(
        "gradient_fuzz: seed {}, {} functions ({} points each) in {} batches of {}: {} FD checks \
         ({} at a tenth of the step, {} skipped at branch changes), {} Dual checks, worst relative error {:.1e} (FD) / {:.1e} (Dual), \
         {} mismatches, {} build failures, {} batches with warnings; {:.0} s ({:.0} s building, \
         {:.0} s running)",
        args.seed,
        totals.functions,
        args.points,
        batches,
        args.batch_size,
        totals.fd_checked,
        totals.fd_refined,
        totals.fd_skipped,
        totals.dual_checked,
        totals.worst_fd,
        totals.worst_dual,
        totals.mismatches,
        build_failures.len(),
        warning_batches.len(),
        start.elapsed().as_secs_f64(),
        build_secs,
        run_secs
    );
    if totals.mismatches == 0 && build_failures.is_empty() && warning_batches.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[derive(Default)]
struct Totals {
    functions: usize,
    fd_checked: usize,
    fd_skipped: usize,
    fd_refined: usize,
    dual_checked: usize,
    mismatches: usize,
    worst_fd: f64,
    worst_dual: f64,
}

impl Totals {
    /// Adds a `TOTALS functions fd_checked fd_skipped dual_checked mismatches worst_fd worst_dual
    /// fd_refined` line.
    fn add(&mut self, line: &str) {
        let v: Vec<&str> = line.split_whitespace().collect();
        let n = |i: usize| v.get(i).and_then(|s| s.parse::<usize>().ok()).unwrap_or(0);
        let x = |i: usize| {
            v.get(i)
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        self.functions += n(0);
        self.fd_checked += n(1);
        self.fd_skipped += n(2);
        self.dual_checked += n(3);
        self.mismatches += n(4);
        self.worst_fd = self.worst_fd.max(x(5));
        self.worst_dual = self.worst_dual.max(x(6));
        self.fd_refined += n(7);
    }
}

/// The scratch crate: Cargo.toml, the lock file of this repository (same dependency
/// versions, no resolution needed) and `src/main.rs`; `src/cases.rs` is written per batch.
fn write_crate(repo: &Path, autodiff: &Path, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("src"))?;
    let autodiff_str = autodiff.display().to_string();
    let manifest = format!(
        "[package]\nname = \"gradient-fuzz-batch\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         [dependencies]\nautodiff = {{ path = {autodiff_str:?} }}\nnum-traits = \"0.2.19\"\n\n\
         [profile.release]\nopt-level = 0\ndebug = false\nincremental = false\ncodegen-units = 16\n\n\
         # not a member of the repository's workspace\n[workspace]\n"
    );
    write_if_changed(&dir.join("Cargo.toml"), &manifest)?;
    if !dir.join("Cargo.lock").exists() {
        let _ = std::fs::copy(autodiff.join("Cargo.lock"), dir.join("Cargo.lock"));
    }
    let harness: PathBuf = repo.join("tests/generator/harness.rs");
    let main = format!(
        "//! One batch of generated functions, checked by the shared harness.\n\n\
         #[path = {:?}]\nmod harness;\nmod cases;\n\n\
         fn main() {{\n    \
             let args: Vec<String> = std::env::args().collect();\n    \
             let options = harness::Options {{\n        \
                 seed: args[1].parse().unwrap(),\n        \
                 batch: args[2].parse().unwrap(),\n        \
                 points: args[3].parse().unwrap(),\n        \
                 source: cases::SOURCE,\n        \
                 reproduce: args[4].clone(),\n    \
             }};\n    \
             assert_eq!((options.seed, options.batch), (cases::SEED, cases::BATCH));\n    \
             let report = harness::check_all(cases::CASES, &options);\n    \
             for failure in &report.failures {{\n        println!(\"{{failure}}\\n\");\n    }}\n    \
             println!(\n        \"TOTALS {{}} {{}} {{}} {{}} {{}} {{:e}} {{:e}} {{}}\",\n        \
                 report.functions,\n        report.fd_checked,\n        report.fd_skipped,\n        \
                 report.dual_checked,\n        report.failures.len(),\n        \
                 report.worst_fd,\n        report.worst_dual,\n        report.fd_refined\n    );\n}}\n",
        harness.display().to_string()
    );
    write_if_changed(&dir.join("src/main.rs"), &main)?;
    Ok(())
}

struct Finished {
    status: std::process::ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    timed_out: bool,
}

/// Runs `command`, killing it after `limit` (a generated function that never returns must
/// not stop the run).
fn run_with_timeout(command: &mut Command, limit: std::time::Duration) -> Finished {
    use std::io::Read;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the batch");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the batch") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            timed_out = true;
            break child.wait().expect("wait for the batch");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    Finished {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        timed_out,
    }
}

fn write_if_changed(path: &Path, text: &str) -> std::io::Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text)?;
    }
    Ok(())
}
