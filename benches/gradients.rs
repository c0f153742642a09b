//! Divan benchmarks of the workloads, one group per workload with one benchmark per tool:
//! `cargo bench --bench gradients` (or `-- gmm` for one group). `examples/bench_report.rs`
//! times the same functions into one table with ratios and targets.

#[path = "workloads/mod.rs"]
mod workloads;

use divan::{black_box, Bencher};
use workloads::*;

fn main() {
    divan::main();
}

thread_local! {
    // divan wants `Sync` closures and a tape is a `RefCell`: one tape per thread, reused
    static TAPE: reverse::Tape = reverse::Tape::new();
}

fn with_tape<R>(f: impl FnOnce(&reverse::Tape) -> R) -> R {
    TAPE.with(f)
}

mod seed_fn {
    use super::*;
    const P: (f64, f64) = seed::POINT;

    #[divan::bench]
    fn primal() -> f64 {
        seed::seed(black_box(P.0), black_box(P.1))
    }
    #[divan::bench]
    fn ours() -> (f64, (f64, f64)) {
        seed::seed_grad(black_box(P.0), black_box(P.1))
    }
    #[divan::bench]
    fn hand_written() -> (f64, (f64, f64)) {
        seed::hand_grad(black_box(P.0), black_box(P.1))
    }
    #[divan::bench]
    fn num_dual() -> (f64, (f64, f64)) {
        seed::dual_grad(black_box(P.0), black_box(P.1))
    }
    #[divan::bench]
    fn tape() -> (f64, (f64, f64)) {
        with_tape(|tape| seed::tape_grad(tape, black_box(P.0), black_box(P.1)))
    }
}

mod rosenbrock_fn {
    use super::*;
    const N: &[usize] = &[2, 100, 10_000];

    #[divan::bench(args = N)]
    fn primal(b: Bencher, n: usize) {
        let x = rosenbrock::input(n);
        b.bench(|| rosenbrock::rosenbrock(black_box(&x)));
    }
    #[divan::bench(args = N)]
    fn ours(b: Bencher, n: usize) {
        let x = rosenbrock::input(n);
        b.bench(|| rosenbrock::rosenbrock_grad(black_box(&x)));
    }
    #[divan::bench(args = N)]
    fn hand_written(b: Bencher, n: usize) {
        let x = rosenbrock::input(n);
        b.bench(|| rosenbrock::hand_grad(black_box(&x)));
    }
    #[divan::bench(args = N)]
    fn num_dual(b: Bencher, n: usize) {
        let x = rosenbrock::input(n);
        b.bench(|| rosenbrock::dual_grad(black_box(&x), n));
    }
    #[divan::bench(args = N)]
    fn tape(b: Bencher, n: usize) {
        let x = rosenbrock::input(n);
        b.bench(|| with_tape(|tape| rosenbrock::tape_grad(tape, black_box(&x))));
    }
}

/// Rosenbrock at n = 2 on a `[f64; 2]`: gradients returned as arrays, no allocation.
mod rosenbrock_array_fn {
    use super::*;

    fn input() -> [f64; 2] {
        rosenbrock::input(2).try_into().expect("two inputs")
    }

    #[divan::bench]
    fn primal(b: Bencher) {
        let x = input();
        b.bench(|| rosenbrock::rosenbrock_array(black_box(&x)));
    }
    #[divan::bench]
    fn ours(b: Bencher) {
        let x = input();
        b.bench(|| rosenbrock::rosenbrock_array_grad(black_box(&x)));
    }
    #[divan::bench]
    fn hand_written(b: Bencher) {
        let x = input();
        b.bench(|| rosenbrock::hand_grad_array(black_box(&x)));
    }
}

mod gmm_fn {
    use super::*;
    // d = 64, k = 200 takes seconds per gradient: bench_report covers it
    const SIZES: &[(usize, usize)] = &[(2, 5), (10, 25)];

    fn data(size: (usize, usize)) -> gmm::Gmm {
        gmm::Gmm::new(size.0, size.1, 1000)
    }

    #[divan::bench(args = SIZES)]
    fn primal(b: Bencher, size: (usize, usize)) {
        let g = data(size);
        b.bench(|| black_box(&g).objective());
    }
    #[divan::bench(args = SIZES)]
    fn ours(b: Bencher, size: (usize, usize)) {
        let g = data(size);
        b.bench(|| black_box(&g).grad_ours());
    }
    #[divan::bench(args = SIZES)]
    fn hand_written(b: Bencher, size: (usize, usize)) {
        let g = data(size);
        b.bench(|| gmm::hand_grad(black_box(&g)));
    }
    #[divan::bench(args = &[(2, 5)])]
    fn num_dual(b: Bencher, size: (usize, usize)) {
        let g = data(size);
        b.bench(|| gmm::dual_grad(black_box(&g), g.params()));
    }
    #[divan::bench(args = SIZES)]
    fn tape(b: Bencher, size: (usize, usize)) {
        let g = data(size);
        b.bench(|| with_tape(|tape| gmm::tape_grad(tape, black_box(&g))));
    }
}

mod lstm_fn {
    use super::*;

    fn data() -> lstm::Lstm {
        lstm::Lstm::new(2, 1024, 14)
    }

    #[divan::bench]
    fn primal(b: Bencher) {
        let s = data();
        b.bench(|| black_box(&s).objective());
    }
    #[divan::bench]
    fn ours(b: Bencher) {
        let s = data();
        b.bench(|| black_box(&s).grad_ours());
    }
    #[divan::bench]
    fn hand_written(b: Bencher) {
        let s = data();
        b.bench(|| lstm::hand_grad(black_box(&s)));
    }
    #[divan::bench(sample_count = 3)]
    fn num_dual(b: Bencher) {
        let s = data();
        b.bench(|| lstm::dual_grad(black_box(&s), s.params()));
    }
    #[divan::bench]
    fn tape(b: Bencher) {
        let s = data();
        b.bench(|| with_tape(|tape| lstm::tape_grad(tape, black_box(&s))));
    }
}

mod ba_fn {
    use super::*;

    fn data() -> ba::Ba {
        ba::Ba::new(20, 200, 500)
    }

    #[divan::bench]
    fn primal(b: Bencher) {
        let ba = data();
        b.bench(|| black_box(&ba).objective());
    }
    #[divan::bench]
    fn ours(b: Bencher) {
        let ba = data();
        b.bench(|| black_box(&ba).jacobian_ours());
    }
    #[divan::bench]
    fn hand_written(b: Bencher) {
        let ba = data();
        b.bench(|| ba::jacobian_hand(black_box(&ba)));
    }
    #[divan::bench]
    fn num_dual(b: Bencher) {
        let ba = data();
        b.bench(|| ba::jacobian_dual(black_box(&ba)));
    }
    #[divan::bench]
    fn tape(b: Bencher) {
        let ba = data();
        b.bench(|| with_tape(|tape| ba::jacobian_tape(tape, black_box(&ba))));
    }
}

mod lenet_step {
    use super::*;
    use autodiff::prelude::Sgd;

    #[divan::bench]
    fn primal(b: Bencher) {
        let batch = lenet::Batch::new(64);
        b.bench(|| black_box(&batch).loss());
    }
    #[divan::bench]
    fn ours(b: Bencher) {
        let mut batch = lenet::Batch::new(64);
        let mut sgd = Sgd::new(0.01);
        b.bench_local(|| batch.step_ours(&mut sgd));
    }
    #[divan::bench]
    fn hand_written(b: Bencher) {
        let mut batch = lenet::Batch::new(64);
        let mut sgd = Sgd::new(0.01);
        b.bench_local(|| batch.step_hand(&mut sgd));
    }
}

mod mlp_fn {
    use super::*;

    fn data() -> mlp::Data {
        mlp::Data::new(16, 64, 256)
    }

    #[divan::bench]
    fn primal(b: Bencher) {
        let d = data();
        b.bench_local(|| black_box(&d).loss());
    }
    #[divan::bench]
    fn ours(b: Bencher) {
        let d = data();
        b.bench_local(|| black_box(&d).grad_ours());
    }
    #[divan::bench]
    fn hand_written(b: Bencher) {
        let d = data();
        b.bench_local(|| mlp::hand_grad(black_box(&d)));
    }
}
