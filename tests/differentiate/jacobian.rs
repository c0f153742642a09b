//! `jacobian()` of functions with a fixed-length array or a `Vec` output: every row equals
//! `backward` of its unit cotangent bit for bit, and matches central finite differences of its
//! output.

use autodiff::finite_difference_gradient;
use autodiff::prelude::*;

use crate::arrays::{assert_close, assert_fd};

/// A camera projection shaped like ADBench's reprojection error: a branch on a saved record,
/// `sqrt`, `sin` and `cos` of one angle, divisions by a value every row reads.
#[differentiate(wrt(r, p, w))]
fn project(r: &[f64; 3], p: &[f64; 3], w: f64, focal: f64) -> [f64; 2] {
    let sq = r[0] * r[0] + r[1] * r[1] + r[2] * r[2];
    let (x, y, z) = if sq != 0.0 {
        let theta = sq.sqrt();
        let (c, s) = (theta.cos(), theta.sin());
        let k = (1.0 - c) / sq;
        let d = r[0] * p[0] + r[1] * p[1] + r[2] * p[2];
        (
            p[0] * c + (r[1] * p[2] - r[2] * p[1]) * s / theta + r[0] * d * k,
            p[1] * c + (r[2] * p[0] - r[0] * p[2]) * s / theta + r[1] * d * k,
            p[2] * c + (r[0] * p[1] - r[1] * p[0]) * s / theta + r[2] * d * k,
        )
    } else {
        (p[0], p[1], p[2])
    };
    let z = z + 5.0;
    [w * focal * x / z, w * focal * y / z]
}

fn project_flat(v: &[f64], row: usize) -> f64 {
    let r = [v[0], v[1], v[2]];
    let p = [v[3], v[4], v[5]];
    project(&r, &p, v[6], 1.3)[row]
}

fn flatten((r, p, w): &([f64; 3], [f64; 3], f64)) -> Vec<f64> {
    r.iter().chain(p).copied().chain([*w]).collect()
}

#[test]
fn rows_of_a_function_with_a_branch_are_its_backward_passes() {
    for point in [
        [0.3, -0.2, 0.5, 1.0, -0.7, 2.0, 0.9],
        // the other arm: no rotation
        [0.0, 0.0, 0.0, 1.0, -0.7, 2.0, 0.9],
    ] {
        let r = [point[0], point[1], point[2]];
        let p = [point[3], point[4], point[5]];
        let (value, pullback) = project_pullback(&r, &p, point[6], 1.3);
        assert_eq!(value, project(&r, &p, point[6], 1.3));
        let rows = pullback.jacobian();
        for (i, row) in rows.iter().enumerate() {
            let mut seed = [0.0; 2];
            seed[i] = 1.0;
            let single = pullback.backward(seed);
            assert_eq!(flatten(row), flatten(&single), "row {i} against backward");
            if point[0] != 0.0 {
                assert_fd(
                    &format!("row {i}"),
                    &flatten(row),
                    |v| project_flat(v, i),
                    &point,
                );
            }
        }
    }
}

/// Without a rotation the derivative with respect to `r` is the cross product's (the arm
/// taken has no `r` in it, so its row holds zeros there), written out here:
/// `x̄ = w f / z`, `z̄ = -w f x / z²` for row 0, `ȳ`, `z̄` likewise for row 1.
#[test]
fn rows_of_the_arm_without_rotation_match_the_formula() {
    let (p, w, f) = ([1.0, -0.7, 2.0], 0.9, 1.3);
    let (_, pullback) = project_pullback(&[0.0; 3], &p, w, f);
    let [row0, row1] = pullback.jacobian();
    let z = p[2] + 5.0;
    assert_close(
        "row 0, p",
        &row0.1,
        &[w * f / z, 0.0, -w * f * p[0] / (z * z)],
        1e-14,
    );
    assert_close(
        "row 1, p",
        &row1.1,
        &[0.0, w * f / z, -w * f * p[1] / (z * z)],
        1e-14,
    );
    assert_close("row 0, w", &[row0.2], &[f * p[0] / z], 1e-14);
    assert_close("row 1, w", &[row1.2], &[f * p[1] / z], 1e-14);
    assert_eq!(row0.0, [0.0; 3]);
}

/// A loop: the rows come from one `backward` call each.
#[differentiate]
fn running_sums(x: &[f64; 4], s: f64) -> [f64; 3] {
    let mut out = [0.0; 3];
    let mut acc = 0.0;
    for i in 0..3 {
        acc = acc * s + x[i] * x[i + 1];
        out[i] = acc.sin();
    }
    out
}

#[test]
fn rows_of_a_function_with_a_loop_match_finite_differences() {
    let point = [0.4, -1.1, 0.7, 0.25, 0.8];
    let x = [point[0], point[1], point[2], point[3]];
    let (_, pullback) = running_sums_pullback(&x, point[4]);
    for (i, (dx, ds)) in pullback.jacobian().iter().enumerate() {
        let mut seed = [0.0; 3];
        seed[i] = 1.0;
        let (sx, ss) = pullback.backward(seed);
        assert_eq!((dx, ds), (&sx, &ss), "row {i} against backward");
        let row: Vec<f64> = dx.iter().copied().chain([*ds]).collect();
        assert_fd(
            &format!("row {i}"),
            &row,
            |v| running_sums(&[v[0], v[1], v[2], v[3]], v[4])[i],
            &point,
        );
    }
}

/// Generic over the float type, one scalar argument inactive.
#[differentiate(wrt(a, b))]
fn polar<T: Float>(a: T, b: T, scale: T) -> [T; 2] {
    let r = (a * a + b * b).sqrt() * scale;
    let angle = b.atan2(a);
    [r * angle.cos(), r / (T::one() + angle * angle)]
}

#[test]
fn rows_of_a_generic_function_match_finite_differences_in_f64_and_f32() {
    let (a, b, scale) = (0.6, -1.4, 2.0);
    let (_, pullback) = polar_pullback(a, b, scale);
    for (i, (da, db)) in pullback.jacobian().iter().enumerate() {
        let fd = finite_difference_gradient(|v: &[f64]| polar(v[0], v[1], scale)[i], &[a, b]);
        assert_close(&format!("row {i}"), &[*da, *db], &fd, 1e-7);
        let (_, pullback32) = polar_pullback(a as f32, b as f32, scale as f32);
        let (da32, db32) = pullback32.jacobian()[i];
        assert_close(
            &format!("row {i} in f32"),
            &[da32 as f64, db32 as f64],
            &fd,
            1e-4,
        );
    }
}

/// A single row is the gradient.
#[differentiate]
fn one_row(x: f64, y: f64) -> [f64; 1] {
    [x.exp() * y - y / x]
}

#[test]
fn a_single_row_is_the_gradient() {
    let (x, y) = (0.7, 1.9);
    let (_, pullback) = one_row_pullback(x, y);
    let [(dx, dy)] = pullback.jacobian();
    // d/dx = e^x y + y / x², d/dy = e^x - 1 / x
    assert_close(
        "row",
        &[dx, dy],
        &[x.exp() * y + y / (x * x), x.exp() - 1.0 / x],
        1e-14,
    );
}

/// A slice parameter: `backward` hands its gradient through a sink; the rows come from one
/// `backward` call each.
#[differentiate]
fn moments(x: &[f64], shift: f64) -> [f64; 2] {
    let n = x.len() as f64;
    let mut mean = 0.0;
    let mut square = 0.0;
    for v in x {
        mean += (v - shift) / n;
        square += (v - shift) * (v - shift) / n;
    }
    [mean, square - mean * mean]
}

#[test]
fn rows_of_a_function_of_a_slice_match_finite_differences() {
    let point = [0.3, 1.7, -0.4, 0.9, 0.25];
    let (_, pullback) = moments_pullback(&point[..4], point[4]);
    for (i, (dx, dshift)) in pullback.jacobian().iter().enumerate() {
        let row: Vec<f64> = dx.iter().copied().chain([*dshift]).collect();
        assert_fd(
            &format!("row {i}"),
            &row,
            |v| moments(&v[..4], v[4])[i],
            &point,
        );
    }
}

#[differentiate]
fn softplus_scaled(a: f64, b: f64) -> f64 {
    (a.exp() + 1.0).ln() * b
}

/// Calls of another differentiated function: the callee's gradients (`call3_d0`) are bound
/// in every row's backward pass and must be that row's.
#[differentiate]
fn with_calls(x: f64, y: f64) -> [f64; 3] {
    let s = softplus_scaled(x * y, y);
    let t = softplus_scaled(s, x);
    [s * t, s.sin() + y, t - x * s]
}

#[test]
fn rows_of_a_function_calling_another_are_their_own() {
    let point = [0.7, -1.3];
    let (_, pullback) = with_calls_pullback(point[0], point[1]);
    for (i, (dx, dy)) in pullback.jacobian().iter().enumerate() {
        let mut seed = [0.0; 3];
        seed[i] = 1.0;
        assert_eq!(
            (*dx, *dy),
            pullback.backward(seed),
            "row {i} against backward"
        );
        assert_fd(
            &format!("row {i}"),
            &[*dx, *dy],
            |v| with_calls(v[0], v[1])[i],
            &point,
        );
    }
}

/// A tuple of scalars: the unit cotangents are `(1, 0)` and `(0, 1)`.
#[differentiate]
fn to_polar(x: f64, y: f64) -> (f64, f64) {
    ((x * x + y * y).sqrt(), y.atan2(x))
}

#[test]
fn rows_of_a_tuple_output_are_the_polar_jacobian() {
    let (x, y) = (1.2, -0.5);
    let (_, pullback) = to_polar_pullback(x, y);
    let [(dr_dx, dr_dy), (dt_dx, dt_dy)] = pullback.jacobian();
    assert_eq!((dr_dx, dr_dy), pullback.backward((1.0, 0.0)));
    assert_eq!((dt_dx, dt_dy), pullback.backward((0.0, 1.0)));
    // dr = (x, y) / r, dθ = (-y, x) / r²
    let r2 = x * x + y * y;
    assert_close("r", &[dr_dx, dr_dy], &[x / r2.sqrt(), y / r2.sqrt()], 1e-15);
    assert_close("theta", &[dt_dx, dt_dy], &[-y / r2, x / r2], 1e-15);
}

/// The residuals of the extended Rosenbrock function as least squares sees them,
/// `r = [10 (x[i+1] - x[i]²), 1 - x[i]]` for each `i`, with a weight: a `Vec` output whose
/// length the input decides.
#[differentiate(wrt(x, w))]
fn residuals(x: &[f64], w: f64) -> Vec<f64> {
    let mut r = Vec::new();
    for i in 0..x.len() - 1 {
        r.push(10.0 * w * (x[i + 1] - x[i] * x[i]));
        r.push(1.0 - x[i]);
    }
    r
}

#[test]
fn rows_of_a_vec_output_are_its_backward_passes() {
    let x = [0.3, -1.1, 0.8, 0.25];
    let w = 0.7;
    let (value, pullback) = residuals_pullback(&x, w);
    assert_eq!(value, residuals(&x, w));
    let rows = pullback.jacobian();
    assert_eq!(rows.len(), value.len());
    for (i, (dx, dw)) in rows.iter().enumerate() {
        let mut seed = vec![0.0; value.len()];
        seed[i] = 1.0;
        let (single_x, single_w) = pullback.backward(seed);
        assert_eq!(
            (dx, dw.to_bits()),
            (&single_x, single_w.to_bits()),
            "row {i}"
        );
        // ∂r_i/∂x and ∂r_i/∂w by central differences of the `i`-th residual
        assert_fd(&format!("row {i}, x"), dx, |x| residuals(x, w)[i], &x);
        let fd_w = finite_difference_gradient(|v| residuals(&x, v[0])[i], &[w]);
        assert_close(&format!("row {i}, w"), &[*dw], &fd_w, 1e-7);
    }
    // no rows for an empty output
    let (empty, pullback) = residuals_pullback(&[0.5], w);
    assert!(empty.is_empty() && pullback.jacobian().is_empty());
}

#[differentiate]
fn squares_and_pair<T: Float>(x: &[T]) -> Vec<T> {
    let mut out: Vec<T> = x.iter().map(|v| *v * *v).collect();
    out.push(x[0] * x[1]);
    out
}

#[differentiate]
fn literal_output(x: f64, y: f64) -> Vec<f64> {
    vec![x * y, x.sin(), y / (1.0 + x * x)]
}

#[test]
fn vec_jacobians_of_collected_literal_and_generic_outputs() {
    let x = [0.4_f64, -0.9, 1.3];
    let (value, pullback) = squares_and_pair_pullback(&x);
    for (i, row) in pullback.jacobian().iter().enumerate() {
        let mut seed = vec![0.0; value.len()];
        seed[i] = 1.0;
        assert_eq!(row, &pullback.backward(seed), "row {i}");
        assert_fd(&format!("row {i}"), row, |x| squares_and_pair(x)[i], &x);
    }
    let xf = [0.4_f32, -0.9];
    let (_, pullback) = squares_and_pair_pullback(&xf);
    // d(x0 x1)/dx = (x1, x0) in the last row, in f32
    assert_eq!(pullback.jacobian()[2], vec![-0.9_f32, 0.4]);
    let (x, y) = (0.6, -1.2);
    let (value, pullback) = literal_output_pullback(x, y);
    let rows = pullback.jacobian();
    assert_eq!(rows.len(), 3);
    for (i, &(dx, dy)) in rows.iter().enumerate() {
        let fd = finite_difference_gradient(|v| literal_output(v[0], v[1])[i], &[x, y]);
        assert_close(&format!("row {i}"), &[dx, dy], &fd, 1e-7);
        let mut seed = vec![0.0; value.len()];
        seed[i] = 1.0;
        let (sx, sy) = pullback.backward(seed);
        assert_eq!((dx.to_bits(), dy.to_bits()), (sx.to_bits(), sy.to_bits()));
    }
}
