//! Timing of LeNet-sized layers. Run in release:
//! `cargo test -p autodiff-runtime --release --test tensor perf -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use autodiff_runtime::rules::tensor::*;

use crate::support::{to_f32, Rng};

/// The fastest of `runs` calls of `f`.
fn best_of(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .min()
        .unwrap()
}

#[test]
#[ignore = "timing; run in release with --ignored --nocapture"]
fn lenet_sized_layers() {
    let mut rng = Rng::new(51);
    let x = to_f32(&rng.tensor(&[64, 1, 28, 28]));
    let w1 = to_f32(&rng.tensor(&[6, 1, 5, 5]));
    let b1 = to_f32(&rng.tensor(&[6]));
    let h = to_f32(&rng.tensor(&[64, 6, 12, 12]));
    let w2 = to_f32(&rng.tensor(&[16, 6, 5, 5]));
    let b2 = to_f32(&rng.tensor(&[16]));
    let f = to_f32(&rng.tensor(&[64, 256]));
    let w3 = to_f32(&rng.tensor(&[120, 256]));
    let b3 = to_f32(&rng.tensor(&[120]));

    let y1 = x.conv2d(&w1, &b1, 1, 0);
    let y2 = h.conv2d(&w2, &b2, 1, 0);
    let y3 = f.linear(&w3, &b3);
    let report = |name: &str, t: Duration| println!("{name:<44} {:>8.3} ms", t.as_secs_f64() * 1e3);
    report(
        "conv2d 64x1x28x28 * 6x1x5x5",
        best_of(10, || drop(x.conv2d(&w1, &b1, 1, 0))),
    );
    report(
        "  conv2d_d0 (grad input)",
        best_of(10, || drop(conv2d_d0(&x, &w1, &1, &0, y1.clone()))),
    );
    report(
        "  conv2d_d1 (grad weight)",
        best_of(10, || drop(conv2d_d1(&x, &w1, &1, &0, y1.clone()))),
    );
    report(
        "  conv2d_d2 (grad bias)",
        best_of(10, || drop(conv2d_d2(y1.clone()))),
    );
    report(
        "conv2d 64x6x12x12 * 16x6x5x5",
        best_of(10, || drop(h.conv2d(&w2, &b2, 1, 0))),
    );
    report(
        "  conv2d_d0 (grad input)",
        best_of(10, || drop(conv2d_d0(&h, &w2, &1, &0, y2.clone()))),
    );
    report(
        "  conv2d_d1 (grad weight)",
        best_of(10, || drop(conv2d_d1(&h, &w2, &1, &0, y2.clone()))),
    );
    report(
        "max_pool2d 64x6x24x24, k = 2",
        best_of(10, || drop(y1.max_pool2d(2))),
    );
    report(
        "linear 64x256 * 120x256",
        best_of(10, || drop(f.linear(&w3, &b3))),
    );
    report(
        "  linear_d0 + linear_d1 + linear_d2",
        best_of(10, || {
            drop(linear_d0(&w3, y3.clone()));
            drop(linear_d1(&f, y3.clone()));
            drop(linear_d2(y3.clone()));
        }),
    );
}
