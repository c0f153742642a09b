//! Loops, arrays and in-place writes, checked against finite differences and analytic
//! gradients.

use autodiff::prelude::*;

use crate::arrays::{assert_close, assert_dot_product_test, assert_fd, point};

fn close(a: f64, b: f64, tol: f64) -> bool {
    autodiff::relative_error(a, b) < tol
}

// f(x) = sum_i 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2
#[differentiate]
fn rosenbrock<T: Float>(x: &[T]) -> T {
    let hundred = T::from(100.0).unwrap();
    let mut sum = T::zero();
    for i in 0..x.len() - 1 {
        let t = x[i + 1] - x[i] * x[i];
        let u = T::one() - x[i];
        sum = sum + hundred * t * t + u * u;
    }
    sum
}

/// df/dx[i] = -400 x[i] (x[i+1] - x[i]^2) - 2 (1 - x[i])  +  200 (x[i] - x[i-1]^2)
fn rosenbrock_gradient(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    let mut g = vec![0.0; n];
    for i in 0..n - 1 {
        g[i] += -400.0 * x[i] * (x[i + 1] - x[i] * x[i]) - 2.0 * (1.0 - x[i]);
        g[i + 1] += 200.0 * (x[i + 1] - x[i] * x[i]);
    }
    g
}

#[test]
fn rosenbrock_matches_the_analytic_gradient() {
    for n in [2usize, 100, 10_000] {
        let x: Vec<f64> = (0..n).map(|i| ((i as f64) * 0.37).sin() * 1.3).collect();
        let (value, grad) = rosenbrock_grad(&x);
        assert_eq!(value, rosenbrock(&x));
        let expected = rosenbrock_gradient(&x);
        assert_eq!(grad.len(), n);
        for (g, e) in grad.iter().zip(&expected) {
            assert!(close(*g, *e, 1e-10), "n={n}: {g} vs {e}");
        }
    }
}

#[test]
fn rosenbrock_saves_at_most_two_scalars_per_element() {
    // The pullback keeps x (n floats) and the loop index of each of the n - 1 iterations;
    // everything else is recomputed from them. `saved_bytes` reports the struct plus the
    // heap storage of its stacks and arrays.
    for n in [2usize, 100, 10_000] {
        let x: Vec<f64> = (0..n).map(|i| i as f64 * 0.01).collect();
        let (_, pullback) = rosenbrock_pullback(&x);
        let bound =
            2 * n * std::mem::size_of::<f64>() + std::mem::size_of::<RosenbrockPullback<f64>>();
        assert!(
            pullback.saved_bytes() <= bound,
            "n={n}: {} > {bound}",
            pullback.saved_bytes()
        );
    }
}

// `x[i]` and `x[i + 1]` in one iteration: the backward pass carries the `x[i]` contribution
// to the next reversed iteration, where it joins that iteration's `x[i + 1]` contribution
// (one update of the cotangent per iteration), and adds what the last reversed iteration
// carried to the range's first element. Variants: `1 + i`, a range not starting at zero or
// running no iteration, an inclusive range, a local vector (whose cotangent grows as it is
// written), a generic function run in `Dual` (forward over reverse).
#[differentiate]
fn chain_from(x: &[f64], start: usize) -> f64 {
    let mut s = 0.0;
    for i in start..x.len() - 1 {
        s += (x[1 + i] - x[i]).sin() * x[i];
    }
    s
}

#[differentiate]
fn chain_inclusive(x: Vec<f64>) -> f64 {
    let mut s = 0.0;
    for i in 0..=x.len() - 2 {
        s += x[i] * x[i + 1].exp();
    }
    s
}

#[differentiate]
fn chain_local(x: &[f64]) -> f64 {
    let y = x.to_vec();
    let mut s = 0.0;
    for i in 0..y.len() - 1 {
        let next = y[i + 1];
        s += y[i] * next * next;
    }
    s + y[0]
}

#[differentiate]
fn chain_generic<T: Float>(x: &[T]) -> T {
    let mut s = T::zero();
    for i in 0..x.len() - 1 {
        s = s + (x[i] * x[i + 1]).cos();
    }
    s
}

#[test]
fn neighbouring_reads_carry_their_contribution() {
    for n in [1usize, 2, 3, 8] {
        let x = point(n, 300 + n as u64);
        for start in [0usize, 1, 6] {
            let (value, grad) = chain_from_grad(&x, start);
            assert_eq!(value.to_bits(), chain_from(&x, start).to_bits());
            assert_fd("chain_from", &grad, |x| chain_from(x, start), &x);
            // the pullback is read-only: two calls, the second scaled
            let (_, pullback) = chain_from_pullback(&x, start);
            let (once, twice) = (pullback.backward(1.0), pullback.backward(2.0));
            let doubled: Vec<f64> = once.iter().map(|g| 2.0 * g).collect();
            assert_close("chain_from, backward twice", &twice, &doubled, 1e-15);
        }
        let (value, grad) = chain_local_grad(&x);
        assert_eq!(value.to_bits(), chain_local(&x).to_bits());
        assert_fd("chain_local", &grad, chain_local, &x);
        if n >= 2 {
            let (value, grad) = chain_inclusive_grad(x.clone());
            assert_eq!(value.to_bits(), chain_inclusive(x.clone()).to_bits());
            assert_fd(
                "chain_inclusive",
                &grad,
                |x| chain_inclusive(x.to_vec()),
                &x,
            );
        }
        // the derivative of the gradient along t, against finite differences of the gradient
        let t = point(n, 400 + n as u64);
        let dual: Vec<Dual<f64>> = x.iter().zip(&t).map(|(&v, &e)| Dual::new(v, e)).collect();
        let (_, grad) = chain_generic_grad(&dual);
        let gradient_at = |s: f64| {
            let p: Vec<f64> = x.iter().zip(&t).map(|(v, e)| v + s * e).collect();
            chain_generic_grad(&p).1
        };
        let h = 1e-5;
        let (plus, minus) = (gradient_at(h), gradient_at(-h));
        for k in 0..n {
            let expected = (plus[k] - minus[k]) / (2.0 * h);
            assert!(
                close(grad[k].eps, expected, 1e-6),
                "k={k}: {:?} vs {expected}",
                grad[k]
            );
            assert!(close(grad[k].re, chain_generic_grad(&x).1[k], 1e-15));
        }
    }
}

// The same on a fixed-length array, whose cotangent (an array) has every element from the
// start: `_grad` writes each element's contribution instead of adding it to a zero, which is
// right only if nothing else reached that element first; here the initial value reads two
// elements too (its contributions come after the loop's) and the range may start late or be
// empty.
#[differentiate]
fn chain_fixed<const N: usize>(x: &[f64; N], start: usize) -> f64 {
    let mut s = x[0] * x[N - 1];
    for i in start..N - 1 {
        s += (x[i + 1] - x[i] * x[i]).sin() * x[i];
    }
    s
}

fn check_chain_fixed<const N: usize>(seed: u64) {
    let x: [f64; N] = point(N, seed).try_into().expect("N elements");
    for start in [0usize, 1, 6] {
        let (value, grad) = chain_fixed_grad(&x, start);
        assert_eq!(value.to_bits(), chain_fixed(&x, start).to_bits());
        let f = |v: &[f64]| chain_fixed::<N>(&v.try_into().expect("N elements"), start);
        assert_fd("chain_fixed", &grad, f, &x);
        let (_, pullback) = chain_fixed_pullback(&x, start);
        assert_close(
            "chain_fixed, backward",
            &pullback.backward(1.0),
            &grad,
            1e-15,
        );
    }
}

#[test]
fn neighbouring_reads_of_a_fixed_length_array_write_their_contribution() {
    check_chain_fixed::<1>(310);
    check_chain_fixed::<2>(311);
    check_chain_fixed::<3>(312);
    check_chain_fixed::<8>(313);
}

// A parameter's cotangent whose first contribution is a shorter vector (that of a copy of
// which only element 1 is read, reversed before the loops) is still full length when the
// loops' element updates index it directly.
#[differentiate]
fn copy_after_chain(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() - 1 {
        s += x[i] * x[i + 1];
    }
    let w = x.to_vec();
    s * w[1]
}

#[differentiate]
fn copy_after_fold(x: &[f64]) -> f64 {
    let s = x.iter().fold(0.0, |acc, &v| acc * 0.5 + v.sin());
    let w = x.to_vec();
    s * w[1]
}

#[test]
fn parameter_cotangents_are_full_length_before_element_updates() {
    let x = point(6, 500);
    let (value, grad) = copy_after_chain_grad(&x);
    assert_eq!(value.to_bits(), copy_after_chain(&x).to_bits());
    assert_fd("copy_after_chain", &grad, copy_after_chain, &x);
    let (value, grad) = copy_after_fold_grad(&x);
    assert_eq!(value.to_bits(), copy_after_fold(&x).to_bits());
    assert_fd("copy_after_fold", &grad, copy_after_fold, &x);
}

// Loops whose result is the output and whose active carried values are sums: `_grad` runs
// each iteration's backward statements right after its forward ones (one sweep). Variants:
// an active initial value, `s = e + s` and `s -= e`, a second sum that is not the output, an
// inactive array written in the loop, a range that runs no iteration, a generic function in
// `Dual`. The pullback (two sweeps) must agree with `_grad`.
#[differentiate]
fn fused_sum(x: &[f64], w: f64) -> f64 {
    let mut s = x[0] * w;
    let mut unused = 0.0;
    let mut seen = vec![0usize; x.len()];
    for i in 1..x.len() {
        seen[i] = i;
        s = (x[i] * w).sin() * x[seen[i] - 1] + s;
        s -= 0.25 * x[i] * x[i];
        unused += x[i];
    }
    let _ = unused;
    s
}

#[differentiate]
fn fused_generic<T: Float>(x: &[T]) -> T {
    let mut s = T::zero();
    for i in 0..x.len() - 1 {
        s = s + (x[i] - x[i + 1]).tanh() * x[i];
    }
    s
}

// a local vector built and updated in each iteration of a fused loop
#[differentiate]
fn fused_with_local_vector(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        let mut w = vec![x[i], 2.0 * x[i]];
        w[1] += x[i].sin();
        s += w[0] * w[1];
    }
    s
}

#[test]
fn fused_loops_match_the_two_sweep_pullback() {
    let x = point(4, 720);
    let (value, grad) = fused_with_local_vector_grad(&x);
    assert_eq!(value.to_bits(), fused_with_local_vector(&x).to_bits());
    assert_fd(
        "fused_with_local_vector",
        &grad,
        fused_with_local_vector,
        &x,
    );

    for n in [1usize, 2, 5] {
        let x = point(n, 700 + n as u64);
        let w = 0.7;
        let (value, (dx, dw)) = fused_sum_grad(&x, w);
        assert_eq!(value.to_bits(), fused_sum(&x, w).to_bits());
        assert_fd("fused_sum, x", &dx, |x| fused_sum(x, w), &x);
        let fd = autodiff::finite_difference_gradient(|p: &[f64]| fused_sum(&x, p[0]), &[w]);
        assert!(close(dw, fd[0], 1e-7), "{dw} vs {}", fd[0]);
        let (_, pullback) = fused_sum_pullback(&x, w);
        let (px, pw) = pullback.backward(1.0);
        assert_close("fused_sum, pullback", &px, &dx, 1e-14);
        assert!(close(pw, dw, 1e-14));

        let (value, grad) = fused_generic_grad(&x);
        assert_eq!(value.to_bits(), fused_generic(&x).to_bits());
        assert_fd("fused_generic", &grad, fused_generic, &x);
        let (_, pullback) = fused_generic_pullback(&x);
        assert_close(
            "fused_generic, pullback",
            &pullback.backward(1.0),
            &grad,
            1e-14,
        );
        // forward over the fused reverse: the derivative of the gradient along t
        let t = point(n, 710 + n as u64);
        let dual: Vec<Dual<f64>> = x.iter().zip(&t).map(|(&v, &e)| Dual::new(v, e)).collect();
        let (_, dual_grad) = fused_generic_grad(&dual);
        let at = |h: f64| {
            let p: Vec<f64> = x.iter().zip(&t).map(|(v, e)| v + h * e).collect();
            fused_generic_grad(&p).1
        };
        let (plus, minus) = (at(1e-5), at(-1e-5));
        for k in 0..n {
            let expected = (plus[k] - minus[k]) / 2e-5;
            assert!(close(dual_grad[k].eps, expected, 1e-6), "k={k}");
            assert_eq!(dual_grad[k].re, grad[k]);
        }
    }
}

// Loops whose active carried values are one sum read after the loop plus scratch arrays
// read nowhere after it: `_grad` runs each iteration's backward statements right after its
// forward ones for a seed of one and scales the gradient by the sum's cotangent later (an
// eager loop). Whether an array carries a cotangent into the previous iteration (an element
// read before it is written) is checked while the loop runs; if one does, `_grad` starts
// over with the two-sweep pullback. Every variant must agree with finite differences and
// with the pullback.

/// `ln sum exp v`, shifted by the maximum (as in ADBench's GMM).
#[differentiate]
fn log_sum_exp(v: &[f64]) -> f64 {
    let mut mx = v[0];
    for i in 1..v.len() {
        if v[i] > mx {
            mx = v[i];
        }
    }
    let mut s = 0.0;
    for i in 0..v.len() {
        s += (v[i] - mx).exp();
    }
    s.ln() + mx
}

// per point: centre it into one buffer, scale it into another (nested loops, a branch), a
// call on a third; the sum then enters a nonlinear tail, so its cotangent is not one
#[differentiate]
fn eager_scratch_buffers(x: &[f64], means: &[f64], scale: &[f64], d: usize, k: usize) -> f64 {
    let n = x.len() / d;
    let mut centred = vec![0.0; d];
    let mut scaled = vec![0.0; d];
    let mut terms = vec![0.0; k];
    let mut total = 0.0;
    for p in 0..n {
        for c in 0..k {
            for j in 0..d {
                centred[j] = x[p * d + j] - means[c * d + j];
                scaled[j] = scale[c] * centred[j];
            }
            for j in 1..d {
                if centred[j - 1] > 0.0 {
                    scaled[j] += 0.5 * centred[j - 1];
                }
            }
            let mut sq = 0.0;
            for j in 0..d {
                sq += scaled[j] * scaled[j];
            }
            terms[c] = -0.5 * sq + scale[c].ln();
        }
        total += log_sum_exp(&terms);
    }
    let mut prior = 0.0;
    for c in 0..k {
        prior += scale[c] * scale[c];
    }
    total * total.sin() + prior
}

// the buffer carries element 1 from each iteration into the next: `_grad` must start over
#[differentiate]
fn eager_carried_buffer(x: &[f64], w: f64) -> f64 {
    let mut buffer = vec![0.0; 2];
    let mut s = 0.0;
    for i in 0..x.len() {
        buffer[0] = buffer[1] * w + x[i];
        buffer[1] = x[i] * w;
        s += buffer[0] * buffer[0];
    }
    s.sqrt() + w
}

// only the first iteration reads what the buffer held before the loop (no derivative)
#[differentiate]
fn eager_first_read(x: &[f64], w: f64) -> f64 {
    let mut buffer = vec![0.0; 1];
    let mut s = 0.0;
    for i in 0..x.len() {
        let before = if i == 0 { buffer[0] * w } else { 0.0 };
        s += before;
        buffer[0] = x[i] * w;
        s += buffer[0].sin();
    }
    2.0 * s * w
}

// the sum starts from an active value; with `wrt`, the restart through the pullback returns
// the same gradient as `_grad` (the buffer carries element 0 into the next iteration)
#[differentiate(wrt(x))]
fn eager_active_start(x: &[f64], w: f64) -> f64 {
    let mut buffer = vec![0.0; 2];
    let mut s = x[0] * w;
    for i in 0..x.len() {
        buffer[1] = buffer[0] * 0.5 + x[i];
        buffer[0] = (buffer[1] * w).sin();
        s += buffer[0] * x[i];
    }
    s * s
}

// the sum is updated in the arms of branches (`if c { s += a }`), one arm leaving it as it is
#[differentiate]
fn eager_branch_sum<T: Float>(x: &[T]) -> T {
    let mut s = T::zero();
    let mut buffer = vec![T::zero(); 2];
    for i in 0..x.len() {
        buffer[0] = x[i].sin();
        buffer[1] = buffer[0] * x[i];
        if x[i] > T::zero() {
            s = s + buffer[1].tanh();
        } else {
            s = s - buffer[0] * buffer[1];
        }
        if buffer[1] < T::zero() {
            s = s + x[i];
        }
    }
    s * s.cos()
}

// sums only, in a generic function: a nested loop and a branch in the body, code after it
#[differentiate]
fn eager_generic<T: Float>(x: &[T]) -> T {
    let mut s = T::zero();
    for i in 0..x.len() {
        let mut inner = T::zero();
        for j in 0..i {
            inner = inner + x[j] * x[i];
        }
        let term = if x[i] > T::zero() {
            inner.tanh()
        } else {
            inner * x[i]
        };
        s = s + term;
    }
    s * s + x[0]
}

/// A callee differentiated with respect to part of its arguments, so that callers reach a
/// hidden variant of it with all of them active.
#[differentiate(wrt(v))]
fn scaled_log_sum_exp(v: &[f64], scale: f64) -> f64 {
    let mut s = 0.0;
    for i in 0..v.len() {
        s += (v[i] * scale).exp();
    }
    s.ln()
}

#[differentiate]
fn generic_square_sum<T: Float>(v: &[T]) -> T {
    let mut s = T::zero();
    for i in 0..v.len() {
        s = s + v[i] * v[i];
    }
    s
}

// per point, calls whose pullbacks are kept and, from the second point on, reuse the record
// stacks of the previous point's: a callee with `wrt`, a generic one, one with no loops
#[differentiate]
fn eager_reused_calls(x: &[f64], scale: f64, d: usize) -> f64 {
    let mut buffer = vec![0.0; d];
    let mut s = 0.0;
    for p in 0..x.len() / d {
        for j in 0..d {
            buffer[j] = x[p * d + j] * (j as f64 + 1.0);
        }
        s += scaled_log_sum_exp(&buffer, scale) + generic_square_sum(&buffer);
        s += smooth_step(buffer[0]);
    }
    s
}

#[differentiate]
fn smooth_step(x: f64) -> f64 {
    x * x * (3.0 - 2.0 * x)
}

// calls replayed by reversed loops, in a branch arm and in a nested loop: each replay fills
// a slot declared in front of the outer loop, reusing the record stacks of the one before
#[differentiate]
fn replayed_calls(x: &[f64], d: usize) -> f64 {
    let mut buffer = vec![0.0; d];
    let mut s = 0.0;
    for p in 0..x.len() / d {
        for j in 0..d {
            buffer[j] = x[p * d + j] * (0.3 * s).cos();
        }
        if buffer[0] > 0.0 {
            s += log_sum_exp(&buffer);
        } else {
            s -= 0.5 * log_sum_exp(&buffer);
        }
        for q in 0..2 {
            s += generic_square_sum(&buffer) * (q as f64 + 0.5);
        }
    }
    s
}

// a generic caller whose eager loop keeps a generic callee's pullback in its slot
#[differentiate]
fn generic_eager_caller<T: Float>(x: &[T], d: usize) -> T {
    let mut buffer = vec![T::zero(); d];
    let mut s = T::zero();
    for p in 0..x.len() / d {
        for j in 0..d {
            buffer[j] = x[p * d + j] * x[(p * d + j + 1) % x.len()];
        }
        s = s + generic_square_sum(&buffer).sqrt();
    }
    s
}

// user variables named like the generated locals of an eager loop (`callN_slot`,
// `loopN_stack`, `recordN`) are renamed, not shadowed
#[differentiate]
fn eager_generated_names(x: &[f64]) -> f64 {
    let mut buffer = vec![0.0; 2];
    let mut s = 0.0;
    for p in 0..x.len() {
        let call12_slot = x[p] * 2.0;
        let record14 = call12_slot.sin();
        buffer[0] = record14;
        buffer[1] = x[p];
        for k in 0..2 {
            let loop9_stack = buffer[k] * buffer[1];
            s += generic_square_sum(&buffer) * loop9_stack;
        }
    }
    s
}

// parameters spelled like the generated locals (`call15_slot` and `loop1` are locals of
// this function's gradient, `x_saved` is a saved copy's name, `s_carry` a carried
// cotangent's, `d_output` the output cotangent's) are renamed in the generated functions, not
// shadowed by them
#[allow(clippy::too_many_arguments)]
#[differentiate]
fn generated_parameter_names(
    x: &[f64],
    x_saved: f64,
    s_carry: f64,
    d_output: f64,
    loop1: f64,
    call15_slot: f64,
    d: usize,
) -> f64 {
    let mut buffer = vec![0.0; d];
    let mut s = 0.0;
    for p in 0..x.len() / d {
        for j in 0..d {
            buffer[j] = x[p * d + j] * x_saved;
        }
        s += generic_square_sum(&buffer) * s_carry * call15_slot + d_output.sin() * buffer[0];
    }
    let mut y = x.to_vec();
    for i in 1..y.len() {
        y[i] = y[i - 1].sin() * loop1 + y[i];
    }
    s + y[y.len() - 1] * y[0]
}

#[test]
fn parameters_named_like_generated_locals() {
    let d = 2;
    let x = point(6, 3340);
    let scalars = [1.5, 0.7, 0.2, 1.1, 0.8];
    let f = |x: &[f64], p: &[f64]| generated_parameter_names(x, p[0], p[1], p[2], p[3], p[4], d);
    let (value, (dx, d0, d1, d2, d3, d4)) =
        generated_parameter_names_grad(&x, 1.5, 0.7, 0.2, 1.1, 0.8, d);
    assert_eq!(value.to_bits(), f(&x, &scalars).to_bits());
    assert_fd("generated_parameter_names, x", &dx, |x| f(x, &scalars), &x);
    assert_fd(
        "generated_parameter_names, scalars",
        &[d0, d1, d2, d3, d4],
        |p| f(&x, p),
        &scalars,
    );
}

// variables whose cotangent would be spelled like a helper of another value's
// (`d_shift` like `d_x_shift`, `d_carry` like `d_s_carry`): their cotangents take a number
#[allow(clippy::too_many_arguments)]
#[differentiate]
fn helper_suffix_names(
    x: &[f64],
    shift: f64,
    carry: f64,
    saved: f64,
    chain: f64,
    countdown: f64,
    at_index: f64,
    at_next: f64,
    shift_at: f64,
    d_shift: f64,
) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() - 1 {
        let next = x[i + 1] - shift * x[i];
        s += next * next * carry + saved * x[i];
    }
    s * chain + countdown.sin() * at_index + at_next * shift_at / d_shift
}

#[test]
fn variables_named_like_helper_suffixes() {
    let x = point(5, 3350);
    let scalars = [0.3, 1.2, -0.4, 0.9, 0.6, 1.7, -0.8, 0.5, 2.1];
    let f = |x: &[f64], p: &[f64]| {
        helper_suffix_names(x, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8])
    };
    let (value, (dx, d0, d1, d2, d3, d4, d5, d6, d7, d8)) =
        helper_suffix_names_grad(&x, 0.3, 1.2, -0.4, 0.9, 0.6, 1.7, -0.8, 0.5, 2.1);
    assert_eq!(value.to_bits(), f(&x, &scalars).to_bits());
    assert_fd("helper_suffix_names, x", &dx, |x| f(x, &scalars), &x);
    assert_fd(
        "helper_suffix_names, scalars",
        &[d0, d1, d2, d3, d4, d5, d6, d7, d8],
        |p| f(&x, p),
        &scalars,
    );
}

#[test]
fn kept_calls_reuse_the_previous_pullback() {
    // the hidden reusing forward function, given a slot holding the pullback of a longer or
    // shorter input, or an empty one, saves what a fresh pullback saves
    let long = point(7, 3300);
    for n in [1usize, 3, 9] {
        let v = point(n, 3310 + n as u64);
        let (fresh_value, fresh) = log_sum_exp_pullback(&v);
        let (_, previous) = log_sum_exp_pullback(&long);
        let mut slot = Some(previous);
        let (value, reused) = __autodiff_reusing_pullback_log_sum_exp(&v, &mut slot);
        assert_eq!(value.to_bits(), fresh_value.to_bits());
        let bits = |g: Vec<f64>| g.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(reused.backward(0.7)),
            bits(fresh.backward(0.7)),
            "n = {n}"
        );
        let mut empty = None;
        let (value, reused) = __autodiff_reusing_pullback_log_sum_exp(&v, &mut empty);
        assert_eq!(value.to_bits(), fresh_value.to_bits());
        assert_eq!(
            bits(reused.backward(0.7)),
            bits(fresh.backward(0.7)),
            "n = {n}"
        );
    }
    for n in [1usize, 2, 5] {
        let d = 3;
        let x = point(n * d, 3360 + n as u64);
        let (value, pullback) = replayed_calls_pullback(&x, d);
        assert_eq!(value.to_bits(), replayed_calls(&x, d).to_bits());
        let dx = pullback.backward(1.0);
        assert_fd("replayed_calls", &dx, |x| replayed_calls(x, d), &x);
        let (_, dx_grad) = replayed_calls_grad(&x, d);
        assert_fd(
            "replayed_calls, grad",
            &dx_grad,
            |x| replayed_calls(x, d),
            &x,
        );
    }
    for n in [1usize, 2, 5] {
        let d = 3;
        let x = point(n * d, 3350 + n as u64);
        let (value, dx) = generic_eager_caller_grad(&x, d);
        assert_eq!(value.to_bits(), generic_eager_caller(&x, d).to_bits());
        assert_fd(
            "generic_eager_caller",
            &dx,
            |x| generic_eager_caller(x, d),
            &x,
        );
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let (value32, dx32) = generic_eager_caller_grad(&x32, d);
        assert_eq!(value32.to_bits(), generic_eager_caller(&x32, d).to_bits());
        for (a, b) in dx32.iter().zip(&dx) {
            assert!(
                (*a as f64 - b).abs() <= 1e-4 * (1.0 + b.abs()),
                "{a} against {b}"
            );
        }
    }
    for n in [1usize, 2, 5] {
        let x = point(n, 3330 + n as u64);
        let (value, dx) = eager_generated_names_grad(&x);
        assert_eq!(value.to_bits(), eager_generated_names(&x).to_bits());
        assert_fd("eager_generated_names", &dx, eager_generated_names, &x);
    }
    for n in [1usize, 2, 5] {
        let d = 3;
        let x = point(n * d, 3320 + n as u64);
        let scale = 0.6;
        let (value, (dx, dscale)) = eager_reused_calls_grad(&x, scale, d);
        assert_eq!(value.to_bits(), eager_reused_calls(&x, scale, d).to_bits());
        assert_fd(
            "eager_reused_calls, x",
            &dx,
            |x| eager_reused_calls(x, scale, d),
            &x,
        );
        assert_fd(
            "eager_reused_calls, scale",
            &[dscale],
            |s| eager_reused_calls(&x, s[0], d),
            &[scale],
        );
        let (_, pullback) = eager_reused_calls_pullback(&x, scale, d);
        let (px, pscale) = pullback.backward(1.0);
        assert_close("eager_reused_calls, pullback x", &px, &dx, 1e-12);
        assert_close(
            "eager_reused_calls, pullback scale",
            &[pscale],
            &[dscale],
            1e-12,
        );
    }
}

#[test]
fn eager_loops_match_finite_differences_and_the_pullback() {
    let (d, k) = (3usize, 4usize);
    for n in [1usize, 2, 7] {
        let x = point(n * d, 800 + n as u64);
        // (away from the kink of the branch at a centred coordinate of zero)
        let means: Vec<f64> = point(k * d, 1810 + 7 * n as u64)
            .iter()
            .map(|m| m + 0.05)
            .collect();
        let scale: Vec<f64> = point(k, 820 + n as u64)
            .iter()
            .map(|s| 1.0 + s.abs())
            .collect();
        let f =
            |x: &[f64], means: &[f64], scale: &[f64]| eager_scratch_buffers(x, means, scale, d, k);
        let (value, (dx, dmeans, dscale)) = eager_scratch_buffers_grad(&x, &means, &scale, d, k);
        assert_eq!(value.to_bits(), f(&x, &means, &scale).to_bits());
        assert_fd(
            "eager_scratch_buffers, x",
            &dx,
            |x| f(x, &means, &scale),
            &x,
        );
        assert_fd(
            "eager_scratch_buffers, means",
            &dmeans,
            |m| f(&x, m, &scale),
            &means,
        );
        assert_fd(
            "eager_scratch_buffers, scale",
            &dscale,
            |s| f(&x, &means, s),
            &scale,
        );
        let (_, pullback) = eager_scratch_buffers_pullback(&x, &means, &scale, d, k);
        let (px, pmeans, pscale) = pullback.backward(1.0);
        assert_close("eager_scratch_buffers, pullback x", &px, &dx, 1e-12);
        assert_close(
            "eager_scratch_buffers, pullback means",
            &pmeans,
            &dmeans,
            1e-12,
        );
        assert_close(
            "eager_scratch_buffers, pullback scale",
            &pscale,
            &dscale,
            1e-12,
        );

        let x = point(n, 830 + n as u64);
        let w = 0.8;
        for (name, f, grad) in [
            (
                "eager_carried_buffer",
                eager_carried_buffer as fn(&[f64], f64) -> f64,
                eager_carried_buffer_grad as fn(&[f64], f64) -> (f64, (Vec<f64>, f64)),
            ),
            ("eager_first_read", eager_first_read, eager_first_read_grad),
        ] {
            let (value, (dx, dw)) = grad(&x, w);
            assert_eq!(value.to_bits(), f(&x, w).to_bits(), "{name}");
            assert_fd(name, &dx, |x| f(x, w), &x);
            let fd = autodiff::finite_difference_gradient(|p: &[f64]| f(&x, p[0]), &[w]);
            assert!(close(dw, fd[0], 1e-6), "{name}: {dw} vs {}", fd[0]);
        }
        let (value, dx) = eager_active_start_grad(&x, w);
        assert_eq!(value.to_bits(), eager_active_start(&x, w).to_bits());
        assert_fd("eager_active_start", &dx, |x| eager_active_start(x, w), &x);
        let (_, pullback) = eager_active_start_pullback(&x, w);
        assert_close(
            "eager_active_start, pullback",
            &pullback.backward(1.0),
            &dx,
            1e-14,
        );

        let (_, pullback) = eager_carried_buffer_pullback(&x, w);
        let (px, pw) = pullback.backward(1.0);
        let (_, (dx, dw)) = eager_carried_buffer_grad(&x, w);
        assert_close("eager_carried_buffer, pullback", &px, &dx, 1e-14);
        assert!(close(pw, dw, 1e-14));

        let (value, grad) = eager_branch_sum_grad(&x);
        assert_eq!(value.to_bits(), eager_branch_sum(&x).to_bits());
        assert_fd("eager_branch_sum", &grad, eager_branch_sum, &x);
        let (_, pullback) = eager_branch_sum_pullback(&x);
        assert_close(
            "eager_branch_sum, pullback",
            &pullback.backward(1.0),
            &grad,
            1e-12,
        );

        let (value, grad) = eager_generic_grad(&x);
        assert_eq!(value.to_bits(), eager_generic(&x).to_bits());
        assert_fd("eager_generic", &grad, eager_generic, &x);
        let (_, pullback) = eager_generic_pullback(&x);
        assert_close(
            "eager_generic, pullback",
            &pullback.backward(1.0),
            &grad,
            1e-12,
        );
        // forward over the eager reverse: the derivative of the gradient along t
        let t = point(n, 840 + n as u64);
        let dual: Vec<Dual<f64>> = x.iter().zip(&t).map(|(&v, &e)| Dual::new(v, e)).collect();
        let (_, dual_grad) = eager_generic_grad(&dual);
        let at = |h: f64| {
            let p: Vec<f64> = x.iter().zip(&t).map(|(v, e)| v + h * e).collect();
            eager_generic_grad(&p).1
        };
        let (plus, minus) = (at(1e-5), at(-1e-5));
        for j in 0..n {
            let expected = (plus[j] - minus[j]) / 2e-5;
            assert!(close(dual_grad[j].eps, expected, 1e-5), "j={j}");
            assert_eq!(dual_grad[j].re, grad[j]);
        }
    }
}

// Scratch buffers every iteration overwrites in full before reading them, whose cotangent
// into the previous iteration is zero by construction, and buffers that look alike but are
// not (where `_grad` starts over through the pullback when a cotangent crosses).

// filled in full at the top of the iteration, in a nested loop over the components (GMM's
// `qx`), in one arm of a branch and passed on by the other
#[differentiate]
fn eager_overwritten_buffers(x: &[f64], w: &[f64], d: usize) -> f64 {
    let mut centred = vec![0.0; d];
    let mut terms = vec![0.0; 2];
    let mut gated = vec![0.0; d];
    let mut total = 0.0;
    for p in 0..x.len() / d {
        for c in 0..2 {
            for j in 0..d {
                centred[j] = x[p * d + j] - w[c * d + j];
            }
            let mut sq = 0.0;
            for j in 0..d {
                sq += centred[j] * centred[j];
            }
            terms[c] = (-sq).exp();
        }
        if x[p * d] > 0.0 {
            for j in 0..d {
                gated[j] = x[p * d + j] * w[j];
            }
            total += gated[0] * gated[d - 1];
        }
        total += (terms[0] + terms[1]).ln();
    }
    total * total
}

// a buffer whose last element the filling loop leaves as the previous iteration wrote it
#[differentiate]
fn eager_partly_overwritten(x: &[f64], w: f64) -> f64 {
    let mut buffer = vec![0.0; 3];
    let mut s = 0.0;
    for i in 0..x.len() {
        for j in 0..2 {
            buffer[j] = x[i] * w + buffer[2];
        }
        buffer[2] = buffer[0] * 0.5;
        s += buffer[1] * buffer[1];
    }
    s.sqrt()
}

// a buffer read before the loop that fills it
#[differentiate]
fn eager_read_before_filled(x: &[f64], w: f64) -> f64 {
    let mut buffer = vec![0.0; 2];
    let mut s = 0.0;
    for i in 0..x.len() {
        s += buffer[1] * w;
        for j in 0..2 {
            buffer[j] = (x[i] * w + j as f64).sin();
        }
        s += buffer[0];
    }
    s * s
}

#[test]
fn eager_loops_over_overwritten_buffers() {
    for n in [1usize, 2, 5] {
        let d = 3;
        let x = point(n * d, 850 + n as u64);
        let w = point(2 * d, 860 + n as u64);
        let (value, (dx, dw)) = eager_overwritten_buffers_grad(&x, &w, d);
        assert_eq!(
            value.to_bits(),
            eager_overwritten_buffers(&x, &w, d).to_bits()
        );
        assert_fd(
            "eager_overwritten_buffers, x",
            &dx,
            |x| eager_overwritten_buffers(x, &w, d),
            &x,
        );
        assert_fd(
            "eager_overwritten_buffers, w",
            &dw,
            |w| eager_overwritten_buffers(&x, w, d),
            &w,
        );
        let (_, pullback) = eager_overwritten_buffers_pullback(&x, &w, d);
        let (px, pw) = pullback.backward(1.0);
        assert_close("eager_overwritten_buffers, pullback x", &px, &dx, 1e-12);
        assert_close("eager_overwritten_buffers, pullback w", &pw, &dw, 1e-12);

        let x = point(n, 870 + n as u64);
        let w = 0.7;
        for (name, f, grad) in [
            (
                "eager_partly_overwritten",
                eager_partly_overwritten as fn(&[f64], f64) -> f64,
                eager_partly_overwritten_grad as fn(&[f64], f64) -> (f64, (Vec<f64>, f64)),
            ),
            (
                "eager_read_before_filled",
                eager_read_before_filled,
                eager_read_before_filled_grad,
            ),
        ] {
            let (value, (dx, dw)) = grad(&x, w);
            assert_eq!(value.to_bits(), f(&x, w).to_bits(), "{name}");
            assert_fd(name, &dx, |x| f(x, w), &x);
            let fd = autodiff::finite_difference_gradient(|p: &[f64]| f(&x, p[0]), &[w]);
            assert!(close(dw, fd[0], 1e-6), "{name}: {dw} vs {}", fd[0]);
        }
    }
}

#[differentiate]
fn running_sum(x: &[f64]) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.len());
    let mut acc = 0.0;
    for v in x.iter() {
        acc += v;
        out.push(acc);
    }
    out
}

#[test]
#[should_panic(
    expected = "backward of `running_sum`: the output cotangent has length 2, but the output has length 3"
)]
fn backward_rejects_a_cotangent_of_the_wrong_length() {
    let (y, pullback) = running_sum_pullback(&[1.0, 2.0, 3.0]);
    assert_eq!(y, running_sum(&[1.0, 2.0, 3.0]));
    pullback.backward(vec![1.0, 1.0]);
}

// ---------------------------------------------------------------------------------------
// Numerically stable log-sum-exp
// ---------------------------------------------------------------------------------------

// lse(x) = m + ln sum_i exp(x_i - m) with m = max_i x_i;  d lse / dx_i = softmax(x)_i
// (the derivative through m cancels: 1 - sum_i softmax_i = 0)
#[differentiate]
fn logsumexp(x: &[f64]) -> f64 {
    let mut m = x[0];
    for &v in x.iter() {
        if v > m {
            m = v;
        }
    }
    let mut s = 0.0;
    for &v in x.iter() {
        s += (v - m).exp();
    }
    m + s.ln()
}

// the same with `f64::max` in a loop and the sum from a fold
#[differentiate]
fn logsumexp_max(x: &[f64]) -> f64 {
    let mut m = f64::NEG_INFINITY;
    for v in x {
        m = m.max(*v);
    }
    let s = x.iter().fold(0.0, |acc, v| acc + (v - m).exp());
    m + s.ln()
}

#[differentiate]
fn logsumexp_fold(x: &[f64]) -> f64 {
    let m = x.iter().fold(f64::NEG_INFINITY, |a, &v| a.max(v));
    let s: f64 = x.iter().map(|v| (v - m).exp()).sum();
    m + s.ln()
}

#[differentiate]
fn logsumexp_turbofish(x: &[f64]) -> f64 {
    let m = x.iter().fold(f64::NEG_INFINITY, |a, &v| a.max(v));
    let s = x.iter().map(|v| (v - m).exp()).sum::<f64>();
    m + s.ln()
}

#[test]
fn logsumexp_with_sum_in_a_local() {
    let x = [1000.0, 1001.5, 999.0, 1000.25];
    let (value, softmax) = softmax_reference(&x);
    for (v, g) in [logsumexp_fold_grad(&x), logsumexp_turbofish_grad(&x)] {
        assert!(close(v, value, 1e-15));
        assert_close("logsumexp with sum", &g, &softmax, 1e-14);
    }
    assert_eq!(
        logsumexp_fold_pullback(&x).0.to_bits(),
        logsumexp_fold(&x).to_bits()
    );
    assert_eq!(
        logsumexp_turbofish_pullback(&x).0.to_bits(),
        logsumexp_turbofish(&x).to_bits()
    );
}

/// The value and softmax, computed in f64 with the maximum subtracted before `exp`.
fn softmax_reference(x: &[f64]) -> (f64, Vec<f64>) {
    let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = x.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    (m + s.ln(), e.iter().map(|v| v / s).collect())
}

#[test]
fn logsumexp_is_finite_and_its_gradient_is_softmax_at_large_inputs() {
    let cases: [&[f64]; 6] = [
        &[1000.0, 1001.5, 999.0, 1000.25],
        &[-1000.0, -1002.0, -999.5],
        &[1000.0, -1000.0, 1000.0, 999.0],
        &[1000.0],
        &[-1000.0, -1000.0],
        &[1e3, 2e3, 1.5e3],
    ];
    for x in cases {
        let (value, softmax) = softmax_reference(x);
        for (name, (v, g)) in [("loop", logsumexp_grad(x)), ("max", logsumexp_max_grad(x))] {
            assert!(v.is_finite(), "{name} {x:?}: {v}");
            assert!(close(v, value, 1e-15), "{name} {x:?}: {v} vs {value}");
            assert_eq!(g.len(), x.len());
            for (k, (a, b)) in g.iter().zip(&softmax).enumerate() {
                assert!(a.is_finite(), "{name} {x:?}: {g:?}");
                assert!(
                    (a - b).abs() < 1e-14,
                    "{name} {x:?}[{k}]: {g:?} vs {softmax:?}"
                );
            }
        }
        assert_eq!(logsumexp_pullback(x).0.to_bits(), logsumexp(x).to_bits());
        assert_eq!(
            logsumexp_max_pullback(x).0.to_bits(),
            logsumexp_max(x).to_bits()
        );
    }
    // equal inputs: lse = a + ln n, softmax = 1/n
    let (v, g) = logsumexp_grad(&[-1000.0; 4]);
    assert!(close(v, -1000.0 + 4f64.ln(), 1e-15));
    assert!(g.iter().all(|&d| (d - 0.25).abs() < 1e-15), "{g:?}");
}

// ---------------------------------------------------------------------------------------
// 1000 steps of explicit Euler for a damped oscillator
// ---------------------------------------------------------------------------------------

// x'' = -k x - c x':  (x, v) <- (x + dt v, v + dt (-k x - c v));  loss = x_N^2 + v_N^2
#[differentiate(wrt(k, c, x0, v0))]
fn damped_oscillator(k: f64, c: f64, x0: f64, v0: f64, dt: f64, steps: usize) -> f64 {
    let mut x = x0;
    let mut v = v0;
    for _ in 0..steps {
        let a = -k * x - c * v;
        x = x + dt * v;
        v = v + dt * a;
    }
    x * x + v * v
}

// the same with the state carried as a tuple and updated by a tuple assignment; dt active
#[differentiate]
fn damped_oscillator_tuple(k: f64, c: f64, x0: f64, v0: f64, dt: f64, steps: usize) -> f64 {
    let (mut x, mut v) = (x0, v0);
    for _ in 0..steps {
        (x, v) = (x + dt * v, v - dt * (k * x + c * v));
    }
    x * x + v * v
}

#[test]
fn euler_oscillator_gradient_over_a_thousand_steps() {
    let (k, c, x0, v0, dt, steps) = (4.0, 0.3, 1.0, -0.5, 0.01, 1000);
    let (value, (gk, gc, gx0, gv0)) = damped_oscillator_grad(k, c, x0, v0, dt, steps);
    assert_eq!(
        value.to_bits(),
        damped_oscillator(k, c, x0, v0, dt, steps).to_bits()
    );
    assert_eq!(
        damped_oscillator_pullback(k, c, x0, v0, dt, steps)
            .0
            .to_bits(),
        value.to_bits()
    );
    assert_fd(
        "damped_oscillator",
        &[gk, gc, gx0, gv0],
        |p| damped_oscillator(p[0], p[1], p[2], p[3], dt, steps),
        &[k, c, x0, v0],
    );

    // Euler is linear in the state: s_N = A^N s_0 with A = [[1, dt], [-k dt, 1 - c dt]], so
    // d loss / d s_0 = 2 (A^N)^T s_N.
    let a = [[1.0, dt], [-k * dt, 1.0 - c * dt]];
    let mut p = [[1.0, 0.0], [0.0, 1.0]];
    for _ in 0..steps {
        p = [
            [
                a[0][0] * p[0][0] + a[0][1] * p[1][0],
                a[0][0] * p[0][1] + a[0][1] * p[1][1],
            ],
            [
                a[1][0] * p[0][0] + a[1][1] * p[1][0],
                a[1][0] * p[0][1] + a[1][1] * p[1][1],
            ],
        ];
    }
    let s = [p[0][0] * x0 + p[0][1] * v0, p[1][0] * x0 + p[1][1] * v0];
    assert!(close(value, s[0] * s[0] + s[1] * s[1], 1e-12));
    let ex0 = 2.0 * (p[0][0] * s[0] + p[1][0] * s[1]);
    let ev0 = 2.0 * (p[0][1] * s[0] + p[1][1] * s[1]);
    assert!(close(gx0, ex0, 1e-12), "{gx0} vs {ex0}");
    assert!(close(gv0, ev0, 1e-12), "{gv0} vs {ev0}");

    let (value_t, (tk, tc, tx0, tv0, tdt)) = damped_oscillator_tuple_grad(k, c, x0, v0, dt, steps);
    assert_eq!(
        value_t.to_bits(),
        damped_oscillator_tuple(k, c, x0, v0, dt, steps).to_bits()
    );
    assert!(close(value_t, value, 1e-12));
    // dt enters 1000 times: difference in the scaled variable dt = 0.01 u (step 1e-5 in dt)
    assert_fd(
        "damped_oscillator_tuple",
        &[tk, tc, tx0, tv0, tdt * 0.01],
        |p| damped_oscillator_tuple(p[0], p[1], p[2], p[3], p[4] * 0.01, steps),
        &[k, c, x0, v0, 1.0],
    );
}

// ---------------------------------------------------------------------------------------
// A while loop whose trip count depends on the input
// ---------------------------------------------------------------------------------------

#[differentiate]
fn newton_sqrt(a: f64) -> f64 {
    let mut y = a;
    while (y * y - a).abs() > 1e-12 * a {
        y = 0.5 * (y + a / y);
    }
    y
}

fn newton_iterations(a: f64) -> usize {
    let (mut y, mut n) = (a, 0);
    while (y * y - a).abs() > 1e-12 * a {
        y = 0.5 * (y + a / y);
        n += 1;
    }
    n
}

#[test]
fn newton_sqrt_gradient_is_one_over_two_sqrt() {
    let mut trips = Vec::new();
    for a in [1e-6, 0.25, 2.0, 9.0, 1234.5, 1e6] {
        let (y, g) = newton_sqrt_grad(a);
        assert_eq!(y.to_bits(), newton_sqrt(a).to_bits());
        assert_eq!(newton_sqrt_pullback(a).0.to_bits(), y.to_bits());
        // the loop stops once |y^2 - a| <= 1e-12 a, so y is within about 5e-13 of sqrt(a)
        assert!(close(y, a.sqrt(), 1e-12), "a={a}: {y}");
        let expected = 0.5 / a.sqrt();
        assert!(
            autodiff::relative_error(g, expected) < 1e-10 * expected.max(1.0),
            "a={a}: {g} vs {expected}"
        );
        trips.push(newton_iterations(a));
    }
    // the trip count really varies with the input
    assert!(trips.iter().min() < trips.iter().max(), "{trips:?}");
}

// ---------------------------------------------------------------------------------------
// Loop forms. Each accumulates s <- s^2 / 2 + x[i] over the visited indices, so the order
// of the iterations matters; the values are compared bit for bit with a plain loop over the
// index list Rust produces, the gradients with finite differences.
// ---------------------------------------------------------------------------------------

fn visit(x: &[f64], indices: impl IntoIterator<Item = usize>) -> f64 {
    let mut s = 0.0;
    for i in indices {
        s = 0.5 * s * s + x[i];
    }
    s
}

#[differentiate]
fn over_range(x: &[f64], a: usize, b: usize) -> f64 {
    let mut s = 0.0;
    for i in a..b {
        s = 0.5 * s * s + x[i];
    }
    s
}

#[differentiate]
fn over_inclusive_range(x: &[f64], a: usize, b: usize) -> f64 {
    let mut s = 0.0;
    for i in a..=b {
        s = 0.5 * s * s + x[i];
    }
    s
}

#[differentiate]
fn over_reversed_range(x: &[f64], a: usize, b: usize) -> f64 {
    let mut s = 0.0;
    for i in (a..b).rev() {
        s = 0.5 * s * s + x[i];
    }
    s
}

#[differentiate]
fn over_reversed_inclusive_range(x: &[f64], a: usize, b: usize) -> f64 {
    let mut s = 0.0;
    for i in (a..=b).rev() {
        s = 0.5 * s * s + x[i];
    }
    s
}

#[differentiate]
fn over_stepped_range(x: &[f64], a: usize, b: usize, k: usize) -> f64 {
    let mut s = 0.0;
    for i in (a..b).step_by(k) {
        s = 0.5 * s * s + x[i];
    }
    s
}

#[differentiate]
fn over_stepped_inclusive_range(x: &[f64], a: usize, b: usize, k: usize) -> f64 {
    let mut s = 0.0;
    for i in (a..=b).step_by(k) {
        s = 0.5 * s * s + x[i];
    }
    s
}

#[differentiate]
fn over_reversed_stepped_range(x: &[f64], a: usize, b: usize, k: usize) -> f64 {
    let mut s = 0.0;
    for i in (a..b).rev().step_by(k) {
        s = 0.5 * s * s + x[i];
    }
    s
}

#[differentiate]
fn over_reversed_stepped_inclusive_range(x: &[f64], a: usize, b: usize, k: usize) -> f64 {
    let mut s = 0.0;
    for i in (a..=b).rev().step_by(k) {
        s = 0.5 * s * s + x[i];
    }
    s
}

#[test]
fn range_forms_visit_the_same_indices_in_the_same_order() {
    let x = point(12, 101);
    for (a, b) in [(0usize, 12usize), (2, 9), (3, 4), (5, 5), (7, 3)] {
        let check =
            |what: &str, grad: (f64, Vec<f64>), f: &dyn Fn(&[f64]) -> f64, expected: f64| {
                assert_eq!(grad.0.to_bits(), expected.to_bits(), "{what} {a}..{b}");
                assert_eq!(f(&x).to_bits(), expected.to_bits(), "{what} {a}..{b}");
                assert_fd(&format!("{what} {a}..{b}"), &grad.1, f, &x);
            };
        check(
            "a..b",
            over_range_grad(&x, a, b),
            &|x| over_range(x, a, b),
            visit(&x, a..b),
        );
        check(
            "(a..b).rev()",
            over_reversed_range_grad(&x, a, b),
            &|x| over_reversed_range(x, a, b),
            visit(&x, (a..b).rev()),
        );
        if b < 12 {
            check(
                "a..=b",
                over_inclusive_range_grad(&x, a, b),
                &|x| over_inclusive_range(x, a, b),
                visit(&x, a..=b),
            );
            check(
                "(a..=b).rev()",
                over_reversed_inclusive_range_grad(&x, a, b),
                &|x| over_reversed_inclusive_range(x, a, b),
                visit(&x, (a..=b).rev()),
            );
        }
        for k in [1usize, 2, 3, 5] {
            check(
                &format!("(a..b).step_by({k})"),
                over_stepped_range_grad(&x, a, b, k),
                &|x| over_stepped_range(x, a, b, k),
                visit(&x, (a..b).step_by(k)),
            );
            check(
                &format!("(a..b).rev().step_by({k})"),
                over_reversed_stepped_range_grad(&x, a, b, k),
                &|x| over_reversed_stepped_range(x, a, b, k),
                visit(&x, (a..b).rev().step_by(k)),
            );
            if b < 12 {
                check(
                    &format!("(a..=b).step_by({k})"),
                    over_stepped_inclusive_range_grad(&x, a, b, k),
                    &|x| over_stepped_inclusive_range(x, a, b, k),
                    visit(&x, (a..=b).step_by(k)),
                );
                check(
                    &format!("(a..=b).rev().step_by({k})"),
                    over_reversed_stepped_inclusive_range_grad(&x, a, b, k),
                    &|x| over_reversed_stepped_inclusive_range(x, a, b, k),
                    visit(&x, (a..=b).rev().step_by(k)),
                );
            }
        }
    }
}

#[differentiate]
fn for_in_slice(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for v in x {
        s = 0.5 * s * s + v;
    }
    s
}

#[differentiate]
fn for_in_iter(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for v in x.iter() {
        s = 0.5 * s * s + v;
    }
    s
}

#[differentiate]
fn for_ref_pattern(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for &v in x.iter() {
        s = 0.5 * s * s + v;
    }
    s
}

#[differentiate]
fn for_in_rev_iter(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for v in x.iter().rev() {
        s = 0.5 * s * s + v;
    }
    s
}

#[differentiate]
fn for_in_copied(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for v in x.iter().copied() {
        s = 0.5 * s * s + v;
    }
    s
}

#[differentiate]
fn for_in_vec_by_value(x: Vec<f64>) -> f64 {
    let mut s = 0.0;
    for v in x {
        s = 0.5 * s * s + v;
    }
    s
}

#[differentiate]
fn for_in_borrowed_vec(x: Vec<f64>) -> f64 {
    let mut s = 0.0;
    for v in &x {
        s = 0.5 * s * s + v;
    }
    s
}

#[differentiate]
fn for_in_array(x: [f64; 5]) -> f64 {
    let mut s = 0.0;
    for v in x {
        s = 0.5 * s * s + v;
    }
    s
}

// s <- s^2 / 2 + (i + 1) v
#[differentiate]
fn for_enumerate(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for (i, v) in x.iter().enumerate() {
        s = 0.5 * s * s + v * (i as f64 + 1.0);
    }
    s
}

// s <- s^2 / 2 + a b over pairs
#[differentiate]
fn for_zip_iter(x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0;
    for (a, b) in x.iter().zip(y.iter()) {
        s = 0.5 * s * s + a * b;
    }
    s
}

#[differentiate]
fn for_zip_slice(x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0;
    for (&a, b) in x.iter().zip(y) {
        s = 0.5 * s * s + a * b;
    }
    s
}

#[test]
fn element_loop_forms() {
    let x = point(5, 103);
    let forward = visit(&x, 0..5);
    let backward = visit(&x, (0..5).rev());
    let forms: [(&str, fn(&[f64]) -> (f64, Vec<f64>), fn(&[f64]) -> f64, f64); 5] = [
        (
            "for v in x",
            |x| for_in_slice_grad(x),
            for_in_slice,
            forward,
        ),
        (
            "for v in x.iter()",
            |x| for_in_iter_grad(x),
            for_in_iter,
            forward,
        ),
        (
            "for &v in x.iter()",
            |x| for_ref_pattern_grad(x),
            for_ref_pattern,
            forward,
        ),
        (
            "x.iter().rev()",
            |x| for_in_rev_iter_grad(x),
            for_in_rev_iter,
            backward,
        ),
        (
            "x.iter().copied()",
            |x| for_in_copied_grad(x),
            for_in_copied,
            forward,
        ),
    ];
    for (what, grad, f, expected) in forms {
        let (value, g) = grad(&x);
        assert_eq!(value.to_bits(), expected.to_bits(), "{what}");
        assert_eq!(f(&x).to_bits(), expected.to_bits(), "{what}");
        assert_fd(what, &g, f, &x);
    }

    let (value, g) = for_in_vec_by_value_grad(x.clone());
    assert_eq!(value.to_bits(), forward.to_bits());
    assert_eq!(for_in_vec_by_value(x.clone()).to_bits(), forward.to_bits());
    assert_fd("for v in Vec", &g, |p| for_in_vec_by_value(p.to_vec()), &x);

    let (value, g) = for_in_borrowed_vec_grad(x.clone());
    assert_eq!(value.to_bits(), forward.to_bits());
    assert_eq!(for_in_borrowed_vec(x.clone()).to_bits(), forward.to_bits());
    assert_fd("for v in &Vec", &g, |p| for_in_borrowed_vec(p.to_vec()), &x);

    let arr = [x[0], x[1], x[2], x[3], x[4]];
    let (value, g): (f64, [f64; 5]) = for_in_array_grad(arr);
    assert_eq!(value.to_bits(), forward.to_bits());
    assert_eq!(for_in_array(arr).to_bits(), forward.to_bits());
    assert_fd(
        "for v in [f64; 5]",
        &g,
        |p| for_in_array([p[0], p[1], p[2], p[3], p[4]]),
        &x,
    );

    let (value, g) = for_enumerate_grad(&x);
    assert_eq!(value.to_bits(), for_enumerate(&x).to_bits());
    assert_fd("enumerate", &g, for_enumerate, &x);

    let y = point(7, 107); // longer than x: zip stops at the shorter
    let mut xy = x.clone();
    xy.extend(&y);
    for (what, grad, f) in [
        (
            "zip(y.iter())",
            for_zip_iter_grad as fn(&[f64], &[f64]) -> (f64, (Vec<f64>, Vec<f64>)),
            for_zip_iter as fn(&[f64], &[f64]) -> f64,
        ),
        ("zip(y)", for_zip_slice_grad, for_zip_slice),
    ] {
        let (value, (gx, gy)) = grad(&x, &y);
        assert_eq!(value.to_bits(), f(&x, &y).to_bits(), "{what}");
        assert_eq!(gy.len(), 7, "{what}: gradient of the longer slice");
        let mut all = gx.clone();
        all.extend(&gy);
        assert_fd(what, &all, |p| f(&p[..5], &p[5..]), &xy);
    }
}

// y = M x with M row-major (rows x n): nested loops
#[differentiate]
fn matvec(m: &[f64], x: &[f64]) -> Vec<f64> {
    let n = x.len();
    let rows = m.len() / n;
    let mut y = vec![0.0; rows];
    for i in 0..rows {
        for j in 0..n {
            y[i] += m[i * n + j] * x[j];
        }
    }
    y
}

// x^T M x with the inner sum accumulated in a variable declared in the outer loop
#[differentiate]
fn quadratic_form(m: &[f64], x: &[f64]) -> f64 {
    let n = x.len();
    let mut q = 0.0;
    for i in 0..n {
        let mut row = 0.0;
        for j in 0..n {
            row += m[i * n + j] * x[j];
        }
        q += x[i] * row;
    }
    q
}

#[test]
fn nested_loops_matrix_vector() {
    let (rows, n) = (3usize, 4usize);
    let m = point(rows * n, 109);
    let x = point(n, 113);
    let (y, pullback) = matvec_pullback(&m, &x);
    assert_eq!(y, matvec(&m, &x));
    let c = point(rows, 127);
    let (dm, dx) = pullback.backward(c.clone());
    // dM[i][j] = c_i x_j, dx = M^T c
    let mut em = vec![0.0; rows * n];
    let mut ex = vec![0.0; n];
    for i in 0..rows {
        for j in 0..n {
            em[i * n + j] = c[i] * x[j];
            ex[j] += m[i * n + j] * c[i];
        }
    }
    assert_close("matvec: dM", &dm, &em, 1e-14);
    assert_close("matvec: dx", &dx, &ex, 1e-14);
    let mut mx = m.clone();
    mx.extend(&x);
    assert_dot_product_test(
        "matvec",
        |p| matvec(&p[..rows * n], &p[rows * n..]),
        |p, c| {
            let (dm, dx) = matvec_pullback(&p[..rows * n], &p[rows * n..])
                .1
                .backward(c.to_vec());
            [dm, dx].concat()
        },
        &mx,
        131,
    );

    // d(x^T M x)/dx = (M + M^T) x, d/dM_ij = x_i x_j
    let sq = point(n * n, 137);
    let (q, (dm, dx)) = quadratic_form_grad(&sq, &x);
    assert_eq!(q.to_bits(), quadratic_form(&sq, &x).to_bits());
    let mut ex = vec![0.0; n];
    let mut em = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            ex[i] += (sq[i * n + j] + sq[j * n + i]) * x[j];
            em[i * n + j] = x[i] * x[j];
        }
    }
    assert_close("quadratic_form: dx", &dx, &ex, 1e-14);
    assert_close("quadratic_form: dM", &dm, &em, 1e-14);
}

// ---------------------------------------------------------------------------------------
// while, loop, break, continue, return inside loops
// ---------------------------------------------------------------------------------------

// while on an active value: y <- y x + 1/2 until y >= 10
#[differentiate]
fn grow_until(x: f64) -> f64 {
    let mut y = x;
    while y < 10.0 {
        y = y * x + 0.5;
    }
    y
}

// loop with break: a fixed-point iteration with an integer counter and a threshold
#[differentiate]
fn loop_with_break(x: f64) -> f64 {
    let mut y = x;
    let mut n = 0;
    loop {
        y = y.sin() + x;
        n += 1;
        if n >= 6 || y > 2.5 {
            break;
        }
    }
    y * y
}

// `break value` from two places
#[differentiate]
fn loop_break_value(x: f64) -> f64 {
    let mut y = x;
    let mut i = 0;
    let r = loop {
        y = y * 1.5 - 0.1 * x;
        i += 1;
        if y > 5.0 {
            break y.ln() * x;
        }
        if i > 20 {
            break -y;
        }
    };
    r + y
}

// continue skips negative entries
#[differentiate]
fn skip_negatives(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        if x[i] < 0.0 {
            continue;
        }
        s = s * x[i].cos() + x[i].sqrt();
    }
    s
}

// early return when the running sum of squares crosses a threshold
#[differentiate]
fn first_crossing(x: &[f64], threshold: f64) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        s += x[i] * x[i];
        if s > threshold {
            return s.sqrt() * (i as f64 + 1.0) - threshold;
        }
    }
    -s * threshold
}

// `return` inside a while loop
#[differentiate]
fn return_from_while(x: f64) -> f64 {
    let mut y = x;
    let mut k = 0;
    while k < 100 {
        y = y * 1.1 + x * 0.1;
        if y > 3.0 {
            return y * x;
        }
        k += 1;
    }
    0.0
}

// break inside a nested if
#[differentiate]
fn nested_break(x: &[f64]) -> f64 {
    let mut p = 1.0;
    for v in x.iter() {
        if *v > 0.0 {
            p = p * (1.0 + v);
            if p > 4.0 {
                break;
            }
        } else {
            p = p - v * p;
        }
    }
    p
}

#[test]
fn while_loop_break_continue_and_return() {
    for x in [1.05, 1.3, 2.0, 3.7] {
        let (y, g) = grow_until_grad(x);
        assert_eq!(y.to_bits(), grow_until(x).to_bits());
        assert_fd("grow_until", &[g], |p| grow_until(p[0]), &[x]);
    }
    for x in [0.3, 1.2, 2.0] {
        let (y, g) = loop_with_break_grad(x);
        assert_eq!(y.to_bits(), loop_with_break(x).to_bits());
        assert_fd("loop_with_break", &[g], |p| loop_with_break(p[0]), &[x]);
    }
    for x in [0.5, 1.1, 3.0, 7.0, -0.5] {
        let (y, g) = loop_break_value_grad(x);
        assert_eq!(y.to_bits(), loop_break_value(x).to_bits());
        assert_fd("loop_break_value", &[g], |p| loop_break_value(p[0]), &[x]);
    }
    let x = [0.5, -0.3, 1.2, -2.0, 0.7];
    let (y, g) = skip_negatives_grad(&x);
    assert_eq!(y.to_bits(), skip_negatives(&x).to_bits());
    assert_fd("skip_negatives", &g, skip_negatives, &x);
    assert_eq!(g[1], 0.0);
    assert_eq!(g[3], 0.0);

    let x = [0.5, -0.8, 1.2, 0.3, 2.0];
    for threshold in [0.1, 1.0, 2.5, 100.0] {
        let (y, (gx, gt)) = first_crossing_grad(&x, threshold);
        assert_eq!(y.to_bits(), first_crossing(&x, threshold).to_bits());
        let mut all = gx.clone();
        all.push(gt);
        let mut at = x.to_vec();
        at.push(threshold);
        assert_fd(
            &format!("first_crossing({threshold})"),
            &all,
            |p| first_crossing(&p[..5], p[5]),
            &at,
        );
    }
    // (at x = 2.5 the first step lands exactly on 3.0: a jump)
    for x in [0.2, 0.9, 2.6, 4.0] {
        let (y, g) = return_from_while_grad(x);
        assert_eq!(y.to_bits(), return_from_while(x).to_bits());
        assert_fd("return_from_while", &[g], |p| return_from_while(p[0]), &[x]);
    }
    for x in [
        vec![0.5, 0.4, -0.2, 1.5, 3.0, 0.1],
        vec![-0.5, 0.25, 0.3],
        vec![2.0, 2.0, 2.0],
    ] {
        let (y, g) = nested_break_grad(&x);
        assert_eq!(y.to_bits(), nested_break(&x).to_bits());
        assert_fd("nested_break", &g, nested_break, &x);
    }
}

// ---------------------------------------------------------------------------------------
// Loop-carried state
// ---------------------------------------------------------------------------------------

// a tuple-valued variable carried through the loop: (p, q) <- (q, p + q/2); f = p q
#[differentiate]
fn carried_tuple(a: f64, b: f64, n: usize) -> f64 {
    let mut pair = (a, b);
    for _ in 0..n {
        let (p, q) = pair;
        pair = (q, p + q * 0.5);
    }
    let (p, q) = pair;
    p * q
}

// t is carried and updated, but only s is used after the loop: s = sum_k 2^k x = 6x for 2
// iterations
#[differentiate]
fn carried_but_dead_after_the_loop(x: f64) -> f64 {
    let mut t = x;
    let mut s = 0.0;
    for _ in 0..2 {
        t = t * 2.0;
        s += t;
    }
    s
}

// the same with a vector: v is written in the loop but unused after it; f = 2 sum x_i
#[differentiate]
fn carried_vector_dead_after_the_loop(x: &[f64]) -> f64 {
    let mut v = x.to_vec();
    let mut s = 0.0;
    for i in 0..v.len() {
        v[i] = v[i] * 2.0;
        s += v[i];
    }
    s
}

#[test]
fn loop_carried_state() {
    for n in [0usize, 1, 5] {
        let (v, (ga, gb)) = carried_tuple_grad(0.7, -0.4, n);
        assert_eq!(v.to_bits(), carried_tuple(0.7, -0.4, n).to_bits());
        assert_fd(
            "carried_tuple",
            &[ga, gb],
            |p| carried_tuple(p[0], p[1], n),
            &[0.7, -0.4],
        );
    }
    assert_eq!(carried_but_dead_after_the_loop_grad(1.5), (9.0, 6.0));
    assert_eq!(carried_but_dead_after_the_loop(1.5), 9.0);
    let x = [1.0, 2.0, -0.5];
    assert_eq!(
        carried_vector_dead_after_the_loop_grad(&x),
        (5.0, vec![2.0; 3])
    );
    assert_eq!(carried_vector_dead_after_the_loop(&x), 5.0);
}

// ---------------------------------------------------------------------------------------
// More jumps and loop shapes
// ---------------------------------------------------------------------------------------

// break and continue inside a while loop with a manual counter
#[differentiate]
fn while_break_continue(x: &[f64]) -> f64 {
    let mut i = 0;
    let mut s = 1.0;
    while i < x.len() {
        let v = x[i];
        i += 1;
        if v < 0.0 {
            continue;
        }
        s = s * (1.0 + v);
        if s > 5.0 {
            break;
        }
    }
    s
}

// return from inside a nested loop
#[differentiate]
fn return_from_nested(x: &[f64], limit: f64) -> f64 {
    let n = x.len();
    let mut s = 0.0;
    for i in 0..n {
        for j in 0..n {
            s += x[i] * x[j];
            if s > limit {
                return s * limit;
            }
        }
        s = s * 0.5;
    }
    s
}

// a `loop` nested in a `for`: per element, halve until below 1 and count the halvings
#[differentiate]
fn loop_in_for(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for &v in x.iter() {
        let mut y = v * v;
        let mut k = 0.0;
        loop {
            if y < 1.0 {
                break;
            }
            y = y * 0.5;
            k += 1.0;
        }
        s += y + k;
    }
    s
}

// shadowing and match inside the body; iteration over a local vector
#[differentiate]
fn shadow_and_match(x: &[f64]) -> f64 {
    let mut w = Vec::new();
    for i in 0..x.len() {
        let v = x[i];
        let v = match i % 3 {
            0 => v * v,
            1 => v.sin(),
            _ => v + 1.0,
        };
        w.push(v);
    }
    let mut s = 0.0;
    for v in w.iter() {
        s = s * 0.5 + v;
    }
    for v in &w {
        s += v * 0.25;
    }
    s
}

// zero-trip loops leave their carried values (and gradients) untouched
#[differentiate]
fn zero_trips(x: &[f64], n: usize) -> f64 {
    let mut v = x.to_vec();
    let mut s = x[0];
    for i in 0..n {
        v[i] = v[i] * 3.0;
        s = s * v[i];
    }
    let mut k = 0;
    while k < n {
        s = s + 1.0;
        k += 1;
    }
    s + v[0] + v[1]
}

// a while loop whose condition reads an array element that the body writes
#[differentiate]
fn while_on_element(x: &[f64]) -> f64 {
    let mut v = x.to_vec();
    let mut k = 0;
    while v[0] < 10.0 && k < 50 {
        v[0] = v[0] * 1.5 + v[1];
        k += 1;
    }
    v[0]
}

// a vector output with an early return from inside the loop.
#[differentiate]
fn prefix_until_large(x: &[f64]) -> Vec<f64> {
    let mut y = Vec::new();
    let mut acc = 0.0;
    for i in 0..x.len() {
        acc += x[i] * x[i];
        if acc > 2.0 {
            y.push(acc.sqrt());
            return y;
        }
        y.push(acc);
    }
    y
}

#[test]
fn more_jumps_and_loop_shapes() {
    for x in [
        vec![0.5, -1.0, 0.8, 2.0, 0.3],
        vec![-0.5, -0.2],
        vec![0.1, 0.2, 0.3],
    ] {
        let (v, g) = while_break_continue_grad(&x);
        assert_eq!(v.to_bits(), while_break_continue(&x).to_bits());
        assert_fd("while_break_continue", &g, while_break_continue, &x);
    }

    let x = [0.5, -0.8, 1.2, 0.3];
    for limit in [0.3, 1.0, 100.0] {
        let (v, (gx, gl)) = return_from_nested_grad(&x, limit);
        assert_eq!(v.to_bits(), return_from_nested(&x, limit).to_bits());
        let mut all = gx.clone();
        all.push(gl);
        assert_fd(
            &format!("return_from_nested({limit})"),
            &all,
            |p| return_from_nested(&p[..4], p[4]),
            &[x[0], x[1], x[2], x[3], limit],
        );
    }

    let x = [0.5, 1.7, -2.9, 4.1];
    let (v, g) = loop_in_for_grad(&x);
    assert_eq!(v.to_bits(), loop_in_for(&x).to_bits());
    assert_fd("loop_in_for", &g, loop_in_for, &x);

    let x = point(7, 191);
    let (v, g) = shadow_and_match_grad(&x);
    assert_eq!(v.to_bits(), shadow_and_match(&x).to_bits());
    assert_fd("shadow_and_match", &g, shadow_and_match, &x);

    let x = [1.5, 2.0, 0.5];
    let (v, g) = zero_trips_grad(&x, 0);
    // s = x_0 and v = x: f = 2 x_0 + x_1
    assert_eq!((v, g), (5.0, vec![2.0, 1.0, 0.0]));
    assert_eq!(zero_trips(&x, 0), 5.0);
    let (v, g) = zero_trips_grad(&x, 2);
    assert_eq!(v.to_bits(), zero_trips(&x, 2).to_bits());
    assert_fd("zero_trips", &g, |p| zero_trips(p, 2), &x);

    for x in [[0.5, 0.25], [2.0, -0.5], [11.0, 3.0]] {
        let (v, g) = while_on_element_grad(&x);
        assert_eq!(v.to_bits(), while_on_element(&x).to_bits());
        assert_fd("while_on_element", &g, while_on_element, &x);
    }
}

#[test]
fn vector_output_with_return_inside_a_loop() {
    for x in [vec![0.5, 0.6, 1.2, 0.3], vec![0.1, 0.2], vec![2.0]] {
        let (y, pullback) = prefix_until_large_pullback(&x);
        assert_eq!(y, prefix_until_large(&x));
        let c = point(y.len(), 193);
        let dx = pullback.backward(c.clone());
        assert_eq!(dx.len(), x.len());
        assert_dot_product_test(
            "prefix_until_large",
            prefix_until_large,
            |x, c| prefix_until_large_pullback(x).1.backward(c.to_vec()),
            &x,
            197,
        );
    }
}

// zip then enumerate: the item is `(i, (a, b))`
#[differentiate]
fn zip_then_enumerate(x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0;
    for (i, (a, b)) in x.iter().zip(y).enumerate() {
        s = s * 0.5 + a * b * (i as f64 + 1.0);
    }
    s
}

// a generic log-sum-exp with a `while` loop, run in f64, f32 and Dual<f64>
#[differentiate]
fn generic_logsumexp<T: Float>(x: &[T]) -> T {
    let mut m = x[0];
    for &v in x.iter() {
        if v > m {
            m = v;
        }
    }
    let mut s = T::zero();
    let mut i = 0;
    while i < x.len() {
        s = s + (x[i] - m).exp();
        i += 1;
    }
    m + s.ln()
}

#[test]
fn zip_enumerate_and_generic_loops() {
    let x = [0.5, -1.0, 1.5];
    let y = [1.0, 2.0, 3.0, 4.0];
    let (v, (gx, gy)) = zip_then_enumerate_grad(&x, &y);
    assert_eq!(v.to_bits(), zip_then_enumerate(&x, &y).to_bits());
    assert_eq!(gy.len(), 4);
    assert_fd(
        "zip_then_enumerate",
        &[gx, gy].concat(),
        |p| zip_then_enumerate(&p[..3], &p[3..]),
        &[x.to_vec(), y.to_vec()].concat(),
    );

    let (value, softmax) = softmax_reference(&x);
    let (v, g) = generic_logsumexp_grad(&x);
    assert_eq!(v.to_bits(), generic_logsumexp(&x).to_bits());
    assert!(close(v, value, 1e-15));
    assert_close("generic_logsumexp f64", &g, &softmax, 1e-15);

    let x32 = x.map(|v| v as f32);
    let (v32, g32) = generic_logsumexp_grad(&x32);
    assert_eq!(v32.to_bits(), generic_logsumexp(&x32).to_bits());
    assert!((v32 as f64 - value).abs() < 1e-6);
    for i in 0..3 {
        assert!((g32[i] as f64 - softmax[i]).abs() < 1e-6, "{g32:?}");
    }

    // shifting every input by t shifts lse by t and leaves the softmax unchanged: seeding
    // all tangents with 1 gives d lse = 1 and d softmax = 0
    let xd: Vec<Dual<f64>> = x.iter().map(|&v| Dual::new(v, 1.0)).collect();
    let (vd, gd) = generic_logsumexp_grad(&xd);
    assert_eq!((vd.re, vd.eps), (v, 1.0));
    for i in 0..3 {
        assert!((gd[i].re - softmax[i]).abs() < 1e-15);
        assert!(gd[i].eps.abs() < 1e-15, "{:?}", gd[i]);
    }
}

// ---------------------------------------------------------------------------------------
// Nested loops: the inner loops' records share one flat stack per loop for the whole call
// ---------------------------------------------------------------------------------------

// an inner `for` whose trip count varies with the outer index, a `while` with a data-dependent
// trip count inside a branch, and a third level
#[differentiate]
fn nested_records(x: &[f64], n: usize) -> f64 {
    let mut s = 0.0;
    for r in 0..n {
        for i in 0..(r % x.len()) + 1 {
            s += (x[i] * r as f64).sin() * x[(i + r) % x.len()];
        }
        if s > 0.0 {
            let mut t = x[r % x.len()].abs() + 0.5;
            while t < 4.0 {
                t = t * 1.5 + s.tanh();
                for k in 0..2 {
                    t += (x[k % x.len()] * t).cos() * 0.1;
                }
            }
            s += t.ln();
        } else {
            s -= x[0].exp();
        }
    }
    s
}

#[test]
fn nested_loops_share_flat_record_stacks() {
    for seed in 0..4 {
        let x = point(5, 40 + seed);
        let (value, grad) = nested_records_grad(&x, 7);
        assert_eq!(value.to_bits(), nested_records(&x, 7).to_bits());
        assert_fd("nested records", &grad, |x| nested_records(x, 7), &x);
        // backward can run twice from the same records
        let (_, pullback) = nested_records_pullback(&x, 7);
        assert_eq!(pullback.backward(1.0), pullback.backward(1.0));
    }
}

// ---------------------------------------------------------------------------------------
// Counters (`k += step` in every iteration) are counted down in the backward pass
// ---------------------------------------------------------------------------------------

// a triangle walked with a running index, as ADBench's GMM does, and a counter of step 2
#[differentiate]
fn counters(x: &[f64], w: &[f64]) -> f64 {
    let n = x.len();
    let mut k = 0;
    let mut s = 0.0;
    for i in 0..n {
        for j in i + 1..n {
            s += w[k] * x[i] * x[j].sin();
            k += 1;
        }
    }
    let mut m = 1;
    for _ in 0..n / 2 {
        s += x[m] * x[m - 1];
        m += 2;
    }
    s
}

// `k` runs on from row to row: the inner loop's count-down continues a variable of the
// reversed outer loop, started from `k`'s final value, instead of a value saved per row
// (`triangle` below is the same through the guard of a moved read)
#[differentiate]
fn chained_rows(x: &[f64], w: &[f64], rows: usize) -> f64 {
    let mut k = 0;
    let mut s = 0.0;
    for r in 0..rows {
        for c in 0..x.len() {
            s += w[k] * (x[c] * (r as f64 + 1.0)).cos();
            k += 1;
        }
    }
    s
}

#[test]
fn counters_continue_across_the_rows_of_an_enclosing_loop() {
    for (rows, cols) in [(0usize, 2usize), (1, 2), (3, 0), (3, 4)] {
        let x = point(cols, 600 + cols as u64);
        let w = point(rows * cols, 610 + rows as u64);
        let (value, (dx, dw)) = chained_rows_grad(&x, &w, rows);
        assert_eq!(value.to_bits(), chained_rows(&x, &w, rows).to_bits());
        assert_fd("chained_rows, x", &dx, |x| chained_rows(x, &w, rows), &x);
        assert_fd("chained_rows, w", &dw, |w| chained_rows(&x, w, rows), &w);
    }
}

#[test]
fn counters_are_counted_down() {
    let x = point(5, 71);
    let w = point(10, 72);
    let (value, (dx, dw)) = counters_grad(&x, &w);
    assert_eq!(value.to_bits(), counters(&x, &w).to_bits());
    assert_fd("counters, x", &dx, |x| counters(x, &w), &x);
    assert_fd("counters, w", &dw, |w| counters(&x, w), &w);
    // nothing per inner iteration but the saved sine: the counters and indices are replayed
    let (_, pullback) = counters_pullback(&x, &w);
    assert!(pullback.saved_bytes() < 2 * 8 * (x.len() + w.len()) + 16 * 10 + 512);
}

// `xc[i]` is the same in every iteration over `j`: it is read, saved and differentiated once
// per row, in front of the inner loop and behind an `i + 1 < n` guard (the last row's inner
// loop runs no iteration and reads nothing). `xc[0]` moves out of the loop filling `w` the
// same way; `w` is never read afterwards, and the code around a moved loop must not warn
// about its dead result (this suite builds with `-D warnings` in CI).
#[differentiate]
fn triangle(xc: &[f64], l: &[f64]) -> f64 {
    let n = xc.len();
    let mut q = vec![0.0; n];
    let mut k = 0;
    for i in 0..n {
        for j in i + 1..n {
            q[j] += l[k] * xc[i].sin();
            k += 1;
        }
    }
    let mut w = vec![0.0; 2];
    for i in 0..n {
        w[i % 2] = q[i] * xc[0];
    }
    let mut s = 0.0;
    for j in 0..n {
        s += q[j] * q[j];
    }
    s
}

#[test]
fn loop_invariant_reads_move_out_of_their_loops() {
    for n in [1usize, 2, 5] {
        let xc = point(n, 80 + n as u64);
        let l = point(n * (n - 1) / 2, 90 + n as u64);
        let (value, (dxc, dl)) = triangle_grad(&xc, &l);
        assert_eq!(value.to_bits(), triangle(&xc, &l).to_bits());
        assert_fd("triangle, xc", &dxc, |xc| triangle(xc, &l), &xc);
        if !l.is_empty() {
            assert_fd("triangle, l", &dl, |l| triangle(&xc, l), &l);
        }
    }
    // no row, no read: an empty input is no out-of-bounds `xc[0]`
    let (value, (dxc, dl)) = triangle_grad(&[], &[]);
    assert_eq!((value, dxc.len(), dl.len()), (0.0, 0, 0));
}

// Loops whose saved values are element reads of an array the loop itself does not change:
// their records are pushed after the loop, in one `extend` over the same range. Offsets,
// reversed, stepped and inclusive ranges, an index from a value outside the loop, and a loop
// that writes its array (whose records stay per iteration).
#[differentiate]
fn norms_of_rewritten_buffer(x: &[f64], n: usize) -> f64 {
    let mut q = vec![0.0; 2 * n];
    let mut total = 0.0;
    for k in 0..3 {
        for i in 0..2 * n {
            q[i] = (x[i % n] * x[k]).sin() + x[i % n];
        }
        let mut sq = 0.0;
        for i in 0..n {
            sq += q[i] * q[n + i];
        }
        let mut back = 0.0;
        for i in (1..n).rev() {
            back += q[i - 1] * q[i - 1] * q[i];
        }
        let mut stepped = 0.0;
        for i in (0..2 * n).step_by(3) {
            stepped += q[i] * q[i] * q[i];
        }
        let mut inclusive = 0.0;
        for i in 0..=n {
            inclusive += q[i] * x[i % n];
        }
        let mut halved = 0.0;
        for i in 0..n {
            halved += q[i] * q[i];
            q[i] = 0.5 * q[i];
        }
        total += (sq * sq + 1.0).sqrt() + back + stepped + inclusive * inclusive + halved;
    }
    total
}

#[test]
fn element_reads_recorded_after_their_loop() {
    for n in [3usize, 4, 7] {
        let x = point(n, 300 + n as u64);
        let (value, dx) = norms_of_rewritten_buffer_grad(&x, n);
        assert_eq!(value.to_bits(), norms_of_rewritten_buffer(&x, n).to_bits());
        assert_fd("norms", &dx, |x| norms_of_rewritten_buffer(x, n), &x);
        // the pullback's backward pass reads the same records
        let (_, pullback) = norms_of_rewritten_buffer_pullback(&x, n);
        let scaled = pullback.backward(2.0);
        let doubled: Vec<f64> = dx.iter().map(|g| 2.0 * g).collect();
        assert_close("norms, backward(2)", &scaled, &doubled, 1e-12);
    }
}

// ---------------------------------------------------------------------------------------
// Loops that keep one element (docs/design.md, "Kept elements"): the value after the loop
// is read again where the loop took it, and its cotangent goes to that element alone
// ---------------------------------------------------------------------------------------

// f = max(x) sum x_i^2;  df/dx_k = [k = argmax] sum x_i^2 + 2 x_k max(x)
#[differentiate]
fn max_times_energy(x: &[f64]) -> f64 {
    let mut mx = x[0];
    for i in 1..x.len() {
        if x[i] > mx {
            mx = x[i];
        }
    }
    let mut s = 0.0;
    for i in 0..x.len() {
        s += x[i] * x[i];
    }
    mx * s
}

fn max_times_energy_gradient(x: &[f64], argmax: usize) -> Vec<f64> {
    let mx = x[argmax];
    let s: f64 = x.iter().map(|v| v * v).sum();
    let mut g: Vec<f64> = x.iter().map(|v| 2.0 * v * mx).collect();
    g[argmax] += s;
    g
}

// the keeping arm first, the taken value computed in the other arm from two arrays, an
// initial value no element has to beat: f = exp(min_i (x_i - y_i)), whose gradient is
// exp(min) at the arg-min in x and its negative in y (zero when no element is below 10)
#[differentiate]
fn smallest_difference(x: &[f64], y: &[f64]) -> f64 {
    let mut mn = 10.0;
    for i in 0..x.len() {
        if x[i] - y[i] >= mn {
        } else {
            mn = x[i] - y[i];
        }
    }
    mn.exp()
}

// the taken value computed before the `if`, from a parameter the function also
// differentiates: f = sin(max_i (a_i w - b_i));  df/dw = cos(.) a_at, df/da_at = cos(.) w
#[differentiate]
fn best_affine(a: &[f64], b: &[f64], w: f64) -> f64 {
    let mut best = a[0] * w - b[0];
    for i in 1..a.len() {
        let candidate = a[i] * w - b[i];
        if candidate > best {
            best = candidate;
        }
    }
    best.sin()
}

// the initial value kept when the range is empty or no element beats it:
// f = sin(max(2 x_0, x_start.., ...))
#[differentiate]
fn max_from(x: &[f64], start: usize) -> f64 {
    let mut mx = 2.0 * x[0];
    for i in start..x.len() {
        if x[i] > mx {
            mx = x[i];
        }
    }
    mx.sin()
}

// reversed and stepped ranges, ties resolved by the comparison as written: `>=` walking down
// keeps the lowest index of equal elements, `>` walking up the first
#[differentiate]
fn max_reversed(x: &[f64]) -> f64 {
    let mut mx = f64::NEG_INFINITY;
    for i in (0..x.len()).rev() {
        if x[i] >= mx {
            mx = x[i];
        }
    }
    mx * mx
}

#[differentiate]
fn max_of_even_places(x: &[f64]) -> f64 {
    let mut mx = f64::NEG_INFINITY;
    for i in (0..x.len()).step_by(2) {
        if x[i] > mx {
            mx = x[i];
        }
    }
    mx * mx
}

// a maximum per row, inside the loop over the rows: f = sum_r max_c m[r][c]^2
#[differentiate]
fn row_maxima(m: &[f64], cols: usize) -> f64 {
    let rows = m.len() / cols;
    let mut s = 0.0;
    for r in 0..rows {
        let mut best = m[r * cols];
        for c in 1..cols {
            if m[r * cols + c] > best {
                best = m[r * cols + c];
            }
        }
        s += best * best;
    }
    s
}

// the running maximum also feeds a sum inside the loop, whose backward pass still walks it
#[differentiate]
fn running_max_sum(x: &[f64]) -> f64 {
    let mut mx = x[0];
    let mut s = 0.0;
    for i in 0..x.len() {
        if x[i] > mx {
            mx = x[i];
        }
        s += mx * x[i];
    }
    s + mx.exp()
}

// loops the rewrite declines (an inclusive range, a `break`, a taken value that is not cheap
// arithmetic): the derivative goes through the loop as before
#[differentiate]
fn max_declined(x: &[f64], limit: f64) -> f64 {
    let n = x.len();
    let mut a = x[0];
    for i in 0..=n - 1 {
        if x[i] > a {
            a = x[i];
        }
    }
    let mut b = x[0];
    for i in 0..n {
        if x[i] > limit {
            break;
        }
        if x[i] > b {
            b = x[i];
        }
    }
    let mut c = x[0].sin();
    for i in 0..n {
        if x[i] < c {
            c = x[i].sin();
        }
    }
    a * b + c
}

#[differentiate]
fn generic_max<T: Float>(x: &[T]) -> T {
    let mut mx = x[0];
    for i in 1..x.len() {
        if x[i] > mx {
            mx = x[i];
        }
    }
    (mx * x[0]).sin()
}

fn argmax_first(x: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in x.iter().enumerate() {
        if *v > x[best] {
            best = i;
        }
    }
    best
}

#[test]
fn kept_elements_give_the_gradient() {
    for seed in [81, 82, 83] {
        let x = point(7, seed);
        let (value, g) = max_times_energy_grad(&x);
        assert_eq!(value.to_bits(), max_times_energy(&x).to_bits());
        assert_close(
            "max_times_energy",
            &g,
            &max_times_energy_gradient(&x, argmax_first(&x)),
            1e-14,
        );
        assert_fd("max_times_energy", &g, max_times_energy, &x);
        let (_, pullback) = max_times_energy_pullback(&x);
        assert_eq!(pullback.backward(1.0), g, "backward and _grad");
    }
    // ties: `>` keeps the first of the equal largest elements
    let x = [1.0, 3.0, 3.0, -2.0];
    assert_close(
        "max_times_energy ties",
        &max_times_energy_grad(&x).1,
        &max_times_energy_gradient(&x, 1),
        1e-14,
    );

    let (x, y) = (point(6, 84), point(6, 85));
    let (value, (dx, dy)) = smallest_difference_grad(&x, &y);
    assert_eq!(value.to_bits(), smallest_difference(&x, &y).to_bits());
    let at = (0..6)
        .min_by(|&i, &j| (x[i] - y[i]).total_cmp(&(x[j] - y[j])))
        .unwrap_or(0);
    let mut expected = vec![0.0; 6];
    expected[at] = value;
    assert_close("smallest_difference x", &dx, &expected, 1e-14);
    expected[at] = -value;
    assert_close("smallest_difference y", &dy, &expected, 1e-14);
    // nothing below the initial 10: a constant
    let big = vec![20.0; 3];
    assert_eq!(
        smallest_difference_grad(&big, &[0.0; 3]).1,
        (vec![0.0; 3], vec![0.0; 3])
    );

    let (a, b, w) = (point(5, 86), point(5, 87), 0.7);
    let (value, (da, db, dw)) = best_affine_grad(&a, &b, w);
    assert_eq!(value.to_bits(), best_affine(&a, &b, w).to_bits());
    assert_fd("best_affine a", &da, |a| best_affine(a, &b, w), &a);
    assert_fd("best_affine b", &db, |b| best_affine(&a, b, w), &b);
    assert_fd("best_affine w", &[dw], |w| best_affine(&a, &b, w[0]), &[w]);

    let x = point(5, 88);
    for start in [0, 2, 5, 9] {
        let (value, g) = max_from_grad(&x, start);
        assert_eq!(value.to_bits(), max_from(&x, start).to_bits());
        assert_fd("max_from", &g, |x| max_from(x, start), &x);
    }
    // an empty range keeps the initial value: d/dx_0 = 2 cos(2 x_0)
    let g = max_from_grad(&x, 9).1;
    assert_close(
        "max_from empty",
        &g,
        &[2.0 * (2.0 * x[0]).cos(), 0.0, 0.0, 0.0, 0.0],
        1e-14,
    );

    let x = [0.5, -2.0, 0.5, 0.25];
    // `>=` walking down: the lowest index of the two 0.5s; d/dx_0 = 2 max
    assert_eq!(max_reversed_grad(&x).1, vec![1.0, 0.0, 0.0, 0.0]);
    let x = point(7, 89);
    let (_, g) = max_reversed_grad(&x);
    assert_fd("max_reversed", &g, max_reversed, &x);
    let (_, g) = max_of_even_places_grad(&x);
    assert_fd("max_of_even_places", &g, max_of_even_places, &x);
    assert_eq!(g[1], 0.0);

    let m = point(12, 90);
    let (value, g) = row_maxima_grad(&m, 4);
    assert_eq!(value.to_bits(), row_maxima(&m, 4).to_bits());
    assert_fd("row_maxima", &g, |m| row_maxima(m, 4), &m);
    assert_eq!(row_maxima_pullback(&m, 4).1.backward(1.0), g);

    let x = point(6, 91);
    let (_, g) = running_max_sum_grad(&x);
    assert_fd("running_max_sum", &g, running_max_sum, &x);

    let x = point(6, 92);
    for limit in [0.55, 2.0] {
        let (_, (g, _)) = max_declined_grad(&x, limit);
        assert_fd("max_declined", &g, |x| max_declined(x, limit), &x);
    }

    let x = point(5, 93);
    let (value, g) = generic_max_grad(&x);
    assert_eq!(value.to_bits(), generic_max(&x).to_bits());
    assert_fd("generic_max", &g, generic_max, &x);
    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let (_, g32) = generic_max_grad(&x32);
    for (got, expected) in g32.iter().zip(&g) {
        assert!((*got as f64 - expected).abs() < 1e-5, "{got} vs {expected}");
    }
}

// `iter_mut()` and `&mut v` over local arrays: writes `*o = ..`, `*o += ..`, reads `*o` and
// `o.tanh()`, with `enumerate`, `zip` on either side, `rev`, and the item written inside a
// branch
#[differentiate]
fn items_written_in_place(x: &[f64], y: &[f64]) -> f64 {
    let mut out = vec![0.0; x.len()];
    for (i, o) in out.iter_mut().enumerate() {
        *o = x[i] * 2.0;
    }
    for (o, v) in out.iter_mut().zip(y) {
        *o += v.sin() * *o;
    }
    for o in &mut out {
        if *o > 0.5 {
            *o = o.tanh();
        }
    }
    let mut s = 0.0;
    for (v, o) in y.iter().zip(out.iter_mut()).rev() {
        *o *= v;
        s += *o;
    }
    s + out.iter().sum::<f64>()
}

// a fixed-size array written through its items in an outer loop, a generic float, and inner
// loops writing through the item of an outer `iter_mut()` loop
#[differentiate]
fn items_of_arrays<T: Float>(x: &[T], w: T) -> T {
    let mut acc = [T::one(); 3];
    for r in 0..x.len() {
        for (k, o) in acc.iter_mut().enumerate() {
            if k % 2 == 0 {
                *o = *o + x[r] * w;
            } else {
                *o = *o * w + x[r].sin();
            }
        }
    }
    for o in acc.iter_mut() {
        for k in 0..x.len() {
            *o = *o * T::from(0.5).unwrap() + x[k].cos();
        }
        let mut j = 0;
        while j < 2 {
            *o = *o + x[j] * *o;
            j += 1;
        }
    }
    let mut s = T::zero();
    for a in &acc {
        s = s + *a * *a;
    }
    s
}

#[test]
fn loops_write_through_iter_mut_items() {
    let x = vec![0.3, -0.4, 1.2];
    let y = vec![0.1, 0.5, 1.0];
    let (value, (dx, dy)) = items_written_in_place_grad(&x, &y);
    assert_eq!(value.to_bits(), items_written_in_place(&x, &y).to_bits());
    let p = [x.clone(), y.clone()].concat();
    let fd = finite_difference_gradient(|p: &[f64]| items_written_in_place(&p[..3], &p[3..]), &p);
    assert_close("iter_mut", &[dx, dy].concat(), &fd, 1e-7);

    let x: Vec<f64> = vec![0.3, -0.4, 1.2, 0.7];
    let (value, (dx, dw)) = items_of_arrays_grad(&x, 0.8);
    assert_eq!(value.to_bits(), items_of_arrays(&x, 0.8).to_bits());
    let p = [x.clone(), vec![0.8]].concat();
    let fd = finite_difference_gradient(|p: &[f64]| items_of_arrays(&p[..4], p[4]), &p);
    assert_close("iter_mut of arrays", &[dx, vec![dw]].concat(), &fd, 1e-7);
    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let (_, (dx32, _)) = items_of_arrays_grad(&x32, 0.8f32);
    let (_, (dx64, _)) = items_of_arrays_grad(&x, 0.8);
    assert!((dx32[0] as f64 - dx64[0]).abs() < 1e-3 * (1.0 + dx64[0].abs()));
}

// double buffering with `std::mem::swap`, scalars swapped and replaced with `mem::replace`
#[differentiate]
fn swapped_buffers(x: &[f64]) -> f64 {
    let n = x.len();
    let mut prev = vec![0.0; n];
    let mut cur = x.to_vec();
    for _ in 0..3 {
        for i in 0..n {
            prev[i] = cur[i] * 0.5 + cur[(i + 1) % n].sin();
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    let mut a = 1.0;
    let mut b = x[0];
    core::mem::swap(&mut a, &mut b);
    let old = std::mem::replace(&mut b, a * a);
    cur.iter().sum::<f64>() * a + b * old + prev[1]
}

#[test]
fn swaps_and_replacements_rebind_their_variables() {
    let x = vec![0.3, -0.4, 1.2];
    let (value, dx) = swapped_buffers_grad(&x);
    assert_eq!(value.to_bits(), swapped_buffers(&x).to_bits());
    assert_fd("swapped_buffers", &dx, swapped_buffers, &x);
}

// reads at a fixed offset from the index, `x[o + i]` and `m[i + k * n]` (the offset computed
// in the loop from values outside it); a loop of no iteration with offsets past the end.
// f = Σ_i sin(x[o + i] m[k n + i]) + x[o + i]², so
// ∂f/∂x[o + i] = cos(·) m[k n + i] + 2 x[o + i] and ∂f/∂m[k n + i] = cos(·) x[o + i]
#[differentiate]
fn offset_reads(x: &[f64], m: &[f64], o: usize, k: usize, n: usize) -> f64 {
    let mut s = 0.0;
    for i in 0..n {
        let a = x[o + i];
        s += (a * m[i + k * n]).sin() + a * a;
    }
    s
}

#[test]
fn reads_at_an_offset_from_the_index() {
    let x = [0.3, -0.4, 1.2, 0.7, -1.1, 0.5];
    let m = [0.9, 0.2, -0.6, 1.3, 0.4, -0.8, 0.1];
    let (value, (dx, dm)) = offset_reads_grad(&x, &m, 2, 1, 3);
    assert_eq!(value.to_bits(), offset_reads(&x, &m, 2, 1, 3).to_bits());
    let mut expect_x = [0.0; 6];
    let mut expect_m = [0.0; 7];
    for i in 0..3 {
        let (a, b) = (x[2 + i], m[3 + i]);
        expect_x[2 + i] = (a * b).cos() * b + 2.0 * a;
        expect_m[3 + i] = (a * b).cos() * a;
    }
    assert_close("offset reads: x", &dx, &expect_x, 1e-14);
    assert_close("offset reads: m", &dm, &expect_m, 1e-14);
    let point = [x.to_vec(), m.to_vec()].concat();
    let fd = autodiff::finite_difference_gradient(
        |p: &[f64]| offset_reads(&p[..6], &p[6..], 2, 1, 3),
        &point,
    );
    assert_close("offset reads: fd", &[dx, dm].concat(), &fd, 1e-7);
    // no iteration: a zero gradient, even with offsets past the end
    let (value, (dx, dm)) = offset_reads_grad(&x, &m, 40, 9, 0);
    assert_eq!(value, 0.0);
    assert!(dx.iter().chain(&dm).all(|&g| g == 0.0));
}

// `reserve` and `shrink_to_fit` change only the capacity: f = Σ_i (2 x_i)² + x_0,
// ∂f/∂x_i = 8 x_i (+ 1 at i = 0)
#[differentiate]
fn reserved_pushes(x: &[f64]) -> f64 {
    let mut v = Vec::with_capacity(1);
    for &t in x {
        v.reserve(1);
        v.push(t * 2.0);
    }
    v.shrink_to_fit();
    v.iter().map(|t| t * t).sum::<f64>() + x[0]
}

#[test]
fn capacity_changes_take_no_part() {
    let x = [0.3, -0.4, 1.2];
    let (value, dx) = reserved_pushes_grad(&x);
    assert_eq!(value.to_bits(), reserved_pushes(&x).to_bits());
    let expected: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(i, t)| 8.0 * t + if i == 0 { 1.0 } else { 0.0 })
        .collect();
    assert_close("reserve", &dx, &expected, 1e-15);
}

// `for_each` closures as loop bodies: assigning captured variables, inside an outer loop that
// carries what they assign, on `enumerate`, on `iter_mut()`, on a range
#[differentiate]
fn for_each_bodies(x: &[f64], w: f64) -> f64 {
    let mut s = 0.0;
    x.iter().for_each(|v: &f64| s += v * w);
    let mut t = 0.0;
    for k in 0..3 {
        x.iter().enumerate().for_each(|(i, &v)| {
            if i % 2 == k % 2 {
                t += v.sin() * k as f64;
            }
        });
    }
    let mut out = x.to_vec();
    out.iter_mut().for_each(|o| *o *= w);
    (0..x.len()).for_each(|i| s += out[i] * x[i]);
    s + t
}

// the same with `for` loops
fn for_each_bodies_by_loops(x: &[f64], w: f64) -> f64 {
    let mut s = 0.0;
    for v in x {
        s += v * w;
    }
    let mut t = 0.0;
    for k in 0..3 {
        for (i, &v) in x.iter().enumerate() {
            if i % 2 == k % 2 {
                t += v.sin() * k as f64;
            }
        }
    }
    let mut out = x.to_vec();
    for o in out.iter_mut() {
        *o *= w;
    }
    for i in 0..x.len() {
        s += out[i] * x[i];
    }
    s + t
}

#[test]
fn for_each_closures_are_loop_bodies() {
    let x = [0.3, -0.4, 1.2, 0.8];
    let w = 0.7;
    let (value, (dx, dw)) = for_each_bodies_grad(&x, w);
    assert_eq!(value.to_bits(), for_each_bodies(&x, w).to_bits());
    assert_eq!(value.to_bits(), for_each_bodies_by_loops(&x, w).to_bits());
    let point = [x.to_vec(), vec![w]].concat();
    let fd =
        autodiff::finite_difference_gradient(|p: &[f64]| for_each_bodies(&p[..4], p[4]), &point);
    assert_close("for_each", &[dx, vec![dw]].concat(), &fd, 1e-7);
}

// `.iter().enumerate().rev()`: back substitution of an upper bidiagonal system,
// x_i = (b_i - u_i x_{i+1}) / d_i from the last row up, in a `for` loop and in a reduction
#[differentiate]
fn back_substitution(b: &[f64], d: &[f64], u: &[f64]) -> f64 {
    let n = b.len();
    let mut x = vec![0.0; n];
    for (i, &bi) in b.iter().enumerate().rev() {
        let next = if i + 1 < n { u[i] * x[i + 1] } else { 0.0 };
        x[i] = (bi - next) / d[i];
    }
    x.iter()
        .enumerate()
        .rev()
        .map(|(i, v)| v * (i as f64 + 1.0))
        .sum::<f64>()
}

// the same with index loops
fn back_substitution_by_index(b: &[f64], d: &[f64], u: &[f64]) -> f64 {
    let n = b.len();
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let next = if i + 1 < n { u[i] * x[i + 1] } else { 0.0 };
        x[i] = (b[i] - next) / d[i];
    }
    let mut s = 0.0;
    for i in (0..n).rev() {
        s += x[i] * (i as f64 + 1.0);
    }
    s
}

#[test]
fn enumerate_then_rev_visits_the_pairs_last_first() {
    let (b, d, u) = ([0.3, -0.4, 1.2], [2.0, 1.5, 3.0], [0.5, -0.7, 0.0]);
    let (value, (gb, gd, gu)) = back_substitution_grad(&b, &d, &u);
    assert_eq!(value.to_bits(), back_substitution(&b, &d, &u).to_bits());
    assert_eq!(
        value.to_bits(),
        back_substitution_by_index(&b, &d, &u).to_bits()
    );
    let point = [b.to_vec(), d.to_vec(), u.to_vec()].concat();
    let fd = autodiff::finite_difference_gradient(
        |p: &[f64]| back_substitution(&p[..3], &p[3..6], &p[6..]),
        &point,
    );
    assert_close("enumerate().rev()", &[gb, gd, gu].concat(), &fd, 1e-7);
}

// `.iter().rev().enumerate()`: elements last first, counted from 0 (a polynomial with its
// coefficients highest first), in a reduction, a `for` loop and over `iter_mut()`
#[differentiate]
fn counted_from_the_end(c: &[f64], t: f64) -> f64 {
    let p: f64 = c
        .iter()
        .rev()
        .enumerate()
        .map(|(k, ck)| ck * t.powi(k as i32))
        .sum();
    let mut q = 0.0;
    for (k, &ck) in c.iter().rev().enumerate() {
        q += ck * (k as f64 + 1.0);
    }
    let mut w = c.to_vec();
    for (k, o) in w.iter_mut().rev().enumerate() {
        *o *= k as f64 + 0.5;
    }
    let first = if w.is_empty() { 0.0 } else { w[0] };
    p * q + first
}

// the same with index loops
fn counted_from_the_end_by_index(c: &[f64], t: f64) -> f64 {
    let n = c.len();
    let (mut p, mut q) = (0.0, 0.0);
    for i in (0..n).rev() {
        p += c[i] * t.powi((n - 1 - i) as i32);
    }
    for i in (0..n).rev() {
        q += c[i] * ((n - 1 - i) as f64 + 1.0);
    }
    let first = if n == 0 {
        0.0
    } else {
        c[0] * ((n - 1) as f64 + 0.5)
    };
    p * q + first
}

#[test]
fn rev_then_enumerate_counts_from_zero_at_the_last_element() {
    let c = [0.3, -0.4, 1.2, 0.8];
    let t = 0.7;
    let (value, (dc, dt)) = counted_from_the_end_grad(&c, t);
    assert_eq!(value.to_bits(), counted_from_the_end(&c, t).to_bits());
    assert_eq!(
        value.to_bits(),
        counted_from_the_end_by_index(&c, t).to_bits()
    );
    let point = [c.to_vec(), vec![t]].concat();
    let fd = autodiff::finite_difference_gradient(
        |p: &[f64]| counted_from_the_end(&p[..4], p[4]),
        &point,
    );
    assert_close("rev().enumerate()", &[dc, vec![dt]].concat(), &fd, 1e-7);
    // an empty slice runs no iteration (and no `len - 1` underflows in a debug build)
    let (value, (dc, dt)) = counted_from_the_end_grad(&[], t);
    assert_eq!((value, dc.len(), dt), (0.0, 0, 0.0));
}

// Coulomb-like energy of points stored as xyz triples: each pair once, the inner loop over
// `chunks(3).skip(i + 1)`
#[differentiate]
fn pair_energy(x: &[f64]) -> f64 {
    let mut e = 0.0;
    for (i, p) in x.chunks(3).enumerate() {
        for q in x.chunks(3).skip(i + 1) {
            let d2 = (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2);
            e += 1.0 / d2.sqrt();
        }
    }
    e
}

// skip and take on windows, chunks and exact chunks, with counts inside and past the end
#[differentiate]
fn skipped_and_taken(x: &[f64], k: usize) -> f64 {
    let mut e = 0.0;
    for w in x.windows(3).take(k) {
        e += w[0] * w[1] - w[2];
    }
    for w in x.windows(2).skip(k) {
        e += (w[1] - w[0]).powi(2);
    }
    for (j, c) in x.chunks(4).take(k).enumerate() {
        e += c[c.len() - 1].sin() * (j + 1) as f64;
    }
    for c in x.chunks_exact(2).skip(1) {
        e += c[0] * c[1];
    }
    e
}

#[test]
fn skip_and_take_on_chunks_and_windows_match_finite_differences() {
    let x = point(9, 41);
    let (value, d_x) = pair_energy_grad(&x);
    assert_eq!(value.to_bits(), pair_energy(&x).to_bits());
    assert_fd("chunks(3).skip(i + 1)", &d_x, pair_energy, &x);
    // the pairs by index, as written without the adaptors
    let mut by_index = 0.0;
    for i in 0..3 {
        for j in i + 1..3 {
            let d2: f64 = (0..3).map(|c| (x[3 * i + c] - x[3 * j + c]).powi(2)).sum();
            by_index += 1.0 / d2.sqrt();
        }
    }
    assert!(close(value, by_index, 1e-14), "{value} against {by_index}");
    for k in [0, 1, 2, 5, 100] {
        let (value, d_x) = skipped_and_taken_grad(&x, k);
        assert_eq!(value.to_bits(), skipped_and_taken(&x, k).to_bits());
        assert_fd(
            &format!("skip and take {k}"),
            &d_x,
            |v| skipped_and_taken(v, k),
            &x,
        );
    }
}

// a trimmed mean: insertion sort by swaps, then the mean of the middle elements; the
// gradient is 1/(n - 2k) at the inputs that land in the middle, 0 elsewhere
#[differentiate]
fn trimmed_mean(x: &[f64], k: usize) -> f64 {
    let mut v = x.to_vec();
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && v[j] < v[j - 1] {
            v.swap(j, j - 1);
            j -= 1;
        }
    }
    let mut s = 0.0;
    for i in k..v.len() - k {
        s += v[i];
    }
    s / (v.len() - 2 * k) as f64
}

#[test]
fn sorting_by_swaps_matches_the_analytic_gradient() {
    let x = [0.3, -1.0, 0.5, 2.0, 0.1, 1.4, -0.2];
    let (value, d_x) = trimmed_mean_grad(&x, 2);
    assert_eq!(value.to_bits(), trimmed_mean(&x, 2).to_bits());
    // sorted: -1.0, -0.2 | 0.1, 0.3, 0.5 | 1.4, 2.0
    let middle = [0.1, 0.3, 0.5];
    for (i, &xi) in x.iter().enumerate() {
        let want = if middle.contains(&xi) { 1.0 / 3.0 } else { 0.0 };
        assert!(
            close(d_x[i], want, 1e-15) || d_x[i] == want,
            "{i}: {} against {want}",
            d_x[i]
        );
    }
    assert_fd("trimmed mean", &d_x, |v| trimmed_mean(v, 2), &x);
}
