//! ADBench's bundle-adjustment objective (Srajer et al. 2018, section 4.2): the weighted
//! reprojection error of every observation (a camera of 11 parameters: Rodrigues rotation 3,
//! centre 3, focal length 1, principal point 2, radial distortion 2; a 3-d point; a weight)
//! and the weight error `1 - w^2`, and their sparse Jacobian: per observation, the 2 x 15
//! block of the reprojection error (two backward passes of one pullback) and the derivative
//! of the weight error.

use super::rng::Rng;
use super::Peer;
use autodiff::prelude::*;
use num_dual::Dual64;
use reverse::{Gradient, Tape};

pub const CAM: usize = 11;
/// Inputs of one observation's reprojection error: camera, point, weight.
pub const INPUTS: usize = CAM + 3 + 1;
/// Jacobian entries per observation: two rows of `INPUTS`, and one for the weight error.
pub const JAC: usize = 2 * INPUTS + 1;

pub struct Ba {
    pub cams: Vec<[f64; CAM]>,
    pub points: Vec<[f64; 3]>,
    pub weights: Vec<f64>,
    /// (camera, point) per observation
    pub obs: Vec<(usize, usize)>,
    pub feats: Vec<[f64; 2]>,
}

impl Ba {
    /// `n` cameras looking at `m` points from about ten units away, `p` observations.
    pub fn new(n: usize, m: usize, p: usize) -> Self {
        let mut rng = Rng::new(0xba00_0000 + (n * 1_000_000 + m * 1000 + p) as u64);
        let cams = (0..n)
            .map(|_| {
                let mut c = [0.0; CAM];
                for r in &mut c[0..3] {
                    *r = 0.3 * rng.normal();
                }
                c[3] = rng.normal();
                c[4] = rng.normal();
                c[5] = -10.0 + rng.normal();
                c[6] = rng.range(0.8, 1.2);
                c[7] = 0.1 * rng.normal();
                c[8] = 0.1 * rng.normal();
                c[9] = 0.01 * rng.normal();
                c[10] = 0.001 * rng.normal();
                c
            })
            .collect();
        let points = (0..m)
            .map(|_| [rng.normal(), rng.normal(), rng.normal()])
            .collect();
        let weights = (0..p).map(|_| rng.range(0.5, 1.5)).collect();
        let obs = (0..p)
            .map(|i| (i % n, if i < m { i } else { rng.below(m) }))
            .collect();
        let feats = (0..p)
            .map(|_| [0.1 * rng.normal(), 0.1 * rng.normal()])
            .collect();
        Ba {
            cams,
            points,
            weights,
            obs,
            feats,
        }
    }

    /// The objective: `2 p` reprojection errors, then `p` weight errors.
    pub fn objective(&self) -> Vec<f64> {
        let p = self.obs.len();
        let mut out = Vec::with_capacity(3 * p);
        for (i, &(c, pt)) in self.obs.iter().enumerate() {
            let e = reproj_error(
                &self.cams[c],
                &self.points[pt],
                self.weights[i],
                &self.feats[i],
            );
            out.extend_from_slice(&e);
        }
        out.extend(self.weights.iter().map(|&w| weight_error(w)));
        out
    }

    /// The Jacobian with our pullbacks: per observation, the two rows of the reprojection
    /// error (camera, point, weight) from `jacobian` (both backward passes in one body), and
    /// the weight error's derivative.
    pub fn jacobian_ours(&self) -> Vec<f64> {
        let mut jac = Vec::with_capacity(JAC * self.obs.len());
        for (i, &(c, pt)) in self.obs.iter().enumerate() {
            let (_, pullback) = reproj_error_pullback(
                &self.cams[c],
                &self.points[pt],
                self.weights[i],
                &self.feats[i],
            );
            for (d_cam, d_x, d_w) in pullback.jacobian() {
                jac.extend_from_slice(&d_cam);
                jac.extend_from_slice(&d_x);
                jac.push(d_w);
            }
            jac.push(weight_error_grad(self.weights[i]).1);
        }
        jac
    }

    /// The same Jacobian with one `backward` call per row.
    pub fn jacobian_ours_per_row(&self) -> Vec<f64> {
        let mut jac = Vec::with_capacity(JAC * self.obs.len());
        for (i, &(c, pt)) in self.obs.iter().enumerate() {
            let (_, pullback) = reproj_error_pullback(
                &self.cams[c],
                &self.points[pt],
                self.weights[i],
                &self.feats[i],
            );
            for seed in [[1.0, 0.0], [0.0, 1.0]] {
                let (d_cam, d_x, d_w) = pullback.backward(seed);
                jac.extend_from_slice(&d_cam);
                jac.extend_from_slice(&d_x);
                jac.push(d_w);
            }
            jac.push(weight_error_grad(self.weights[i]).1);
        }
        jac
    }

    /// The same Jacobian from central finite differences (for the tests).
    pub fn jacobian_fd(&self) -> Vec<f64> {
        let mut jac = Vec::new();
        for (i, &(c, pt)) in self.obs.iter().enumerate() {
            let mut x = [0.0; INPUTS];
            x[..CAM].copy_from_slice(&self.cams[c]);
            x[CAM..CAM + 3].copy_from_slice(&self.points[pt]);
            x[CAM + 3] = self.weights[i];
            let feat = self.feats[i];
            for row in 0..2 {
                let f = |v: &[f64]| {
                    let cam: [f64; CAM] = v[..CAM].try_into().unwrap();
                    let pt: [f64; 3] = v[CAM..CAM + 3].try_into().unwrap();
                    reproj_error(&cam, &pt, v[CAM + 3], &feat)[row]
                };
                jac.extend(autodiff::finite_difference_gradient(f, &x));
            }
            jac.push(-2.0 * self.weights[i]);
        }
        jac
    }
}

/// One observation's weighted reprojection error (ADBench's `computeReprojError`).
#[differentiate(wrt(cam, x, w))]
pub fn reproj_error(cam: &[f64; 11], x: &[f64; 3], w: f64, feat: &[f64; 2]) -> [f64; 2] {
    let xo0 = x[0] - cam[3];
    let xo1 = x[1] - cam[4];
    let xo2 = x[2] - cam[5];
    let sqtheta = cam[0] * cam[0] + cam[1] * cam[1] + cam[2] * cam[2];
    let (xc0, xc1, xc2) = if sqtheta != 0.0 {
        let theta = sqtheta.sqrt();
        let costheta = theta.cos();
        let sintheta = theta.sin();
        let theta_inverse = 1.0 / theta;
        let w0 = cam[0] * theta_inverse;
        let w1 = cam[1] * theta_inverse;
        let w2 = cam[2] * theta_inverse;
        let c0 = w1 * xo2 - w2 * xo1;
        let c1 = w2 * xo0 - w0 * xo2;
        let c2 = w0 * xo1 - w1 * xo0;
        let tmp = (w0 * xo0 + w1 * xo1 + w2 * xo2) * (1.0 - costheta);
        (
            xo0 * costheta + c0 * sintheta + w0 * tmp,
            xo1 * costheta + c1 * sintheta + w1 * tmp,
            xo2 * costheta + c2 * sintheta + w2 * tmp,
        )
    } else {
        (
            xo0 + cam[1] * xo2 - cam[2] * xo1,
            xo1 + cam[2] * xo0 - cam[0] * xo2,
            xo2 + cam[0] * xo1 - cam[1] * xo0,
        )
    };
    let p0 = xc0 / xc2;
    let p1 = xc1 / xc2;
    let rsq = p0 * p0 + p1 * p1;
    let distortion = 1.0 + cam[9] * rsq + cam[10] * rsq * rsq;
    let proj0 = p0 * distortion * cam[6] + cam[7];
    let proj1 = p1 * distortion * cam[6] + cam[8];
    [w * (proj0 - feat[0]), w * (proj1 - feat[1])]
}

/// ADBench's `computeZachWeightError`.
#[differentiate]
pub fn weight_error(w: f64) -> f64 {
    1.0 - w * w
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// The forward values the hand-written backward pass reads.
struct Forward {
    rotated: bool,
    theta: f64,
    cos: f64,
    sin: f64,
    axis: [f64; 3],
    xo: [f64; 3],
    cross: [f64; 3],
    tmp: f64,
    xc: [f64; 3],
    p: [f64; 2],
    rsq: f64,
    distortion: f64,
    residual: [f64; 2],
}

// inlined into both Jacobians, as it was when only one of them called it
#[inline(always)]
fn hand_forward(cam: &[f64; CAM], x: &[f64; 3], w: f64, feat: &[f64; 2]) -> ([f64; 2], Forward) {
    let xo = [x[0] - cam[3], x[1] - cam[4], x[2] - cam[5]];
    let r = [cam[0], cam[1], cam[2]];
    let sqtheta = dot(r, r);
    let rotated = sqtheta != 0.0;
    let (theta, cos, sin, axis, c, tmp, xc);
    if rotated {
        theta = sqtheta.sqrt();
        (sin, cos) = theta.sin_cos();
        let inv = 1.0 / theta;
        axis = [r[0] * inv, r[1] * inv, r[2] * inv];
        c = cross(axis, xo);
        tmp = dot(axis, xo) * (1.0 - cos);
        xc = [
            xo[0] * cos + c[0] * sin + axis[0] * tmp,
            xo[1] * cos + c[1] * sin + axis[1] * tmp,
            xo[2] * cos + c[2] * sin + axis[2] * tmp,
        ];
    } else {
        (theta, cos, sin, axis, tmp) = (0.0, 1.0, 0.0, r, 0.0);
        c = cross(r, xo);
        xc = [xo[0] + c[0], xo[1] + c[1], xo[2] + c[2]];
    }
    let p = [xc[0] / xc[2], xc[1] / xc[2]];
    let rsq = p[0] * p[0] + p[1] * p[1];
    let distortion = 1.0 + cam[9] * rsq + cam[10] * rsq * rsq;
    let residual = [
        p[0] * distortion * cam[6] + cam[7] - feat[0],
        p[1] * distortion * cam[6] + cam[8] - feat[1],
    ];
    let err = [w * residual[0], w * residual[1]];
    let fwd = Forward {
        rotated,
        theta,
        cos,
        sin,
        axis,
        xo,
        cross: c,
        tmp,
        xc,
        p,
        rsq,
        distortion,
        residual,
    };
    (err, fwd)
}

/// The reprojection error's vector-Jacobian product, by hand: `g` is the cotangent of the two
/// errors; writes the camera, point and weight cotangents into `out` (15 values).
fn hand_backward(f: &Forward, cam: &[f64; CAM], w: f64, g: [f64; 2], out: &mut [f64]) {
    let d_w = g[0] * f.residual[0] + g[1] * f.residual[1];
    let d_proj = [w * g[0], w * g[1]];
    let focal = cam[6];
    let mut d_cam = [0.0; CAM];
    d_cam[7] = d_proj[0];
    d_cam[8] = d_proj[1];
    d_cam[6] = (d_proj[0] * f.p[0] + d_proj[1] * f.p[1]) * f.distortion;
    let d_distortion = focal * (d_proj[0] * f.p[0] + d_proj[1] * f.p[1]);
    d_cam[9] = d_distortion * f.rsq;
    d_cam[10] = d_distortion * f.rsq * f.rsq;
    let d_rsq = d_distortion * (cam[9] + 2.0 * cam[10] * f.rsq);
    let d_p = [
        d_proj[0] * focal * f.distortion + 2.0 * f.p[0] * d_rsq,
        d_proj[1] * focal * f.distortion + 2.0 * f.p[1] * d_rsq,
    ];
    let inv_z = 1.0 / f.xc[2];
    let d_xc = [
        d_p[0] * inv_z,
        d_p[1] * inv_z,
        -(d_p[0] * f.p[0] + d_p[1] * f.p[1]) * inv_z,
    ];
    let (d_xo, d_r);
    if f.rotated {
        // xc = xo cos + (a x xo) sin + a tmp,  tmp = (a . xo)(1 - cos),  a = r / theta
        let a = f.axis;
        let d_tmp = dot(a, d_xc);
        let d_dot = d_tmp * (1.0 - f.cos);
        let d_cos = dot(d_xc, f.xo) - d_tmp * dot(a, f.xo);
        let d_sin = dot(d_xc, f.cross);
        let from_cross = cross(d_xc, a);
        d_xo = [
            d_xc[0] * f.cos + f.sin * from_cross[0] + d_dot * a[0],
            d_xc[1] * f.cos + f.sin * from_cross[1] + d_dot * a[1],
            d_xc[2] * f.cos + f.sin * from_cross[2] + d_dot * a[2],
        ];
        let xo_cross = cross(f.xo, d_xc);
        let d_a = [
            f.sin * xo_cross[0] + d_xc[0] * f.tmp + d_dot * f.xo[0],
            f.sin * xo_cross[1] + d_xc[1] * f.tmp + d_dot * f.xo[1],
            f.sin * xo_cross[2] + d_xc[2] * f.tmp + d_dot * f.xo[2],
        ];
        // a = r / theta, theta = |r|: the part of d_a along a cancels with d theta's
        let d_theta = -f.sin * d_cos + f.cos * d_sin - dot(d_a, a) / f.theta;
        d_r = [
            d_a[0] / f.theta + d_theta * a[0],
            d_a[1] / f.theta + d_theta * a[1],
            d_a[2] / f.theta + d_theta * a[2],
        ];
    } else {
        // xc = xo + r x xo
        let from_cross = cross(d_xc, f.axis);
        d_xo = [
            d_xc[0] + from_cross[0],
            d_xc[1] + from_cross[1],
            d_xc[2] + from_cross[2],
        ];
        d_r = cross(f.xo, d_xc);
    }
    d_cam[0] = d_r[0];
    d_cam[1] = d_r[1];
    d_cam[2] = d_r[2];
    d_cam[3] = -d_xo[0];
    d_cam[4] = -d_xo[1];
    d_cam[5] = -d_xo[2];
    out[..CAM].copy_from_slice(&d_cam);
    out[CAM..CAM + 3].copy_from_slice(&d_xo);
    out[CAM + 3] = d_w;
}

/// [`hand_backward`] for both unit cotangents at once: every cotangent is a pair, one entry
/// per row, so that the two rows' chains of operations run side by side (what `jacobian`
/// does for ours). Writes the rows into `rows[0]` and `rows[1]` (15 values each).
fn hand_backward_rows(f: &Forward, cam: &[f64; CAM], w: f64, rows: [&mut [f64]; 2]) {
    fn each(op: impl Fn(usize) -> f64) -> [f64; 2] {
        [op(0), op(1)]
    }
    // row k seeds the k-th error: d_proj is w in its own coordinate, 0 in the other
    let d_w = [f.residual[0], f.residual[1]];
    let d_proj = [[w, 0.0], [0.0, w]];
    let focal = cam[6];
    let along_p = each(|k| d_proj[k][0] * f.p[0] + d_proj[k][1] * f.p[1]);
    let d_focal = each(|k| along_p[k] * f.distortion);
    let d_distortion = each(|k| focal * along_p[k]);
    let d_k1 = each(|k| d_distortion[k] * f.rsq);
    let d_k2 = each(|k| d_distortion[k] * f.rsq * f.rsq);
    let d_rsq = each(|k| d_distortion[k] * (cam[9] + 2.0 * cam[10] * f.rsq));
    let d_p = [0, 1].map(|k| {
        [
            d_proj[k][0] * focal * f.distortion + 2.0 * f.p[0] * d_rsq[k],
            d_proj[k][1] * focal * f.distortion + 2.0 * f.p[1] * d_rsq[k],
        ]
    });
    let inv_z = 1.0 / f.xc[2];
    let d_xc = [0, 1].map(|k| {
        [
            d_p[k][0] * inv_z,
            d_p[k][1] * inv_z,
            -(d_p[k][0] * f.p[0] + d_p[k][1] * f.p[1]) * inv_z,
        ]
    });
    let (d_xo, d_r): ([[f64; 3]; 2], [[f64; 3]; 2]);
    if f.rotated {
        let a = f.axis;
        let (a_xo, one_minus_cos) = (dot(a, f.xo), 1.0 - f.cos);
        let d_tmp = each(|k| dot(a, d_xc[k]));
        let d_dot = each(|k| d_tmp[k] * one_minus_cos);
        let d_cos = each(|k| dot(d_xc[k], f.xo) - d_tmp[k] * a_xo);
        let d_sin = each(|k| dot(d_xc[k], f.cross));
        let from_cross = [cross(d_xc[0], a), cross(d_xc[1], a)];
        d_xo = [0, 1].map(|k| {
            [0, 1, 2].map(|c| d_xc[k][c] * f.cos + f.sin * from_cross[k][c] + d_dot[k] * a[c])
        });
        let xo_cross = [cross(f.xo, d_xc[0]), cross(f.xo, d_xc[1])];
        let d_a = [0, 1].map(|k| {
            [0, 1, 2].map(|c| f.sin * xo_cross[k][c] + d_xc[k][c] * f.tmp + d_dot[k] * f.xo[c])
        });
        let d_theta = each(|k| -f.sin * d_cos[k] + f.cos * d_sin[k] - dot(d_a[k], a) / f.theta);
        d_r = [0, 1].map(|k| [0, 1, 2].map(|c| d_a[k][c] / f.theta + d_theta[k] * a[c]));
    } else {
        let from_cross = [cross(d_xc[0], f.axis), cross(d_xc[1], f.axis)];
        d_xo = [0, 1].map(|k| [0, 1, 2].map(|c| d_xc[k][c] + from_cross[k][c]));
        d_r = [cross(f.xo, d_xc[0]), cross(f.xo, d_xc[1])];
    }
    for (k, out) in rows.into_iter().enumerate() {
        out[..3].copy_from_slice(&d_r[k]);
        out[3] = -d_xo[k][0];
        out[4] = -d_xo[k][1];
        out[5] = -d_xo[k][2];
        out[6] = d_focal[k];
        out[7] = d_proj[k][0];
        out[8] = d_proj[k][1];
        out[9] = d_k1[k];
        out[10] = d_k2[k];
        out[CAM..CAM + 3].copy_from_slice(&d_xo[k]);
        out[CAM + 3] = d_w[k];
    }
}

/// The Jacobian with the hand-written adjoint computing both rows in one body
/// ([`hand_backward_rows`]).
pub fn jacobian_hand_rows(ba: &Ba) -> Vec<f64> {
    let mut jac = vec![0.0; JAC * ba.obs.len()];
    for (i, (&(c, pt), block)) in ba.obs.iter().zip(jac.chunks_exact_mut(JAC)).enumerate() {
        let cam = &ba.cams[c];
        let w = ba.weights[i];
        let (_, fwd) = hand_forward(cam, &ba.points[pt], w, &ba.feats[i]);
        let (first, rest) = block.split_at_mut(INPUTS);
        hand_backward_rows(&fwd, cam, w, [first, &mut rest[..INPUTS]]);
        block[2 * INPUTS] = -2.0 * w;
    }
    jac
}

/// The Jacobian with the hand-written adjoint: one forward and two backward passes per
/// observation, written straight into the output.
pub fn jacobian_hand(ba: &Ba) -> Vec<f64> {
    let mut jac = vec![0.0; JAC * ba.obs.len()];
    for (i, (&(c, pt), block)) in ba.obs.iter().zip(jac.chunks_exact_mut(JAC)).enumerate() {
        let cam = &ba.cams[c];
        let w = ba.weights[i];
        let (_, fwd) = hand_forward(cam, &ba.points[pt], w, &ba.feats[i]);
        hand_backward(&fwd, cam, w, [1.0, 0.0], &mut block[..INPUTS]);
        hand_backward(&fwd, cam, w, [0.0, 1.0], &mut block[INPUTS..2 * INPUTS]);
        block[2 * INPUTS] = -2.0 * w;
    }
    jac
}

/// One observation's reprojection error for the peers' scalar types.
fn reproj_peer<S: Peer>(cam: &[S], x: &[S], w: S, feat: &[f64; 2], zero: S) -> [S; 2] {
    let xo = [x[0] - cam[3], x[1] - cam[4], x[2] - cam[5]];
    let sqtheta = cam[0] * cam[0] + cam[1] * cam[1] + cam[2] * cam[2];
    let xc = if sqtheta != zero {
        let theta = sqtheta.sqrt();
        let (cos, sin) = (theta.cos(), theta.sin());
        let inv = theta.recip();
        let a = [cam[0] * inv, cam[1] * inv, cam[2] * inv];
        let c = [
            a[1] * xo[2] - a[2] * xo[1],
            a[2] * xo[0] - a[0] * xo[2],
            a[0] * xo[1] - a[1] * xo[0],
        ];
        let tmp = (a[0] * xo[0] + a[1] * xo[1] + a[2] * xo[2]) * (-cos + 1.0);
        [
            xo[0] * cos + c[0] * sin + a[0] * tmp,
            xo[1] * cos + c[1] * sin + a[1] * tmp,
            xo[2] * cos + c[2] * sin + a[2] * tmp,
        ]
    } else {
        [
            xo[0] + cam[1] * xo[2] - cam[2] * xo[1],
            xo[1] + cam[2] * xo[0] - cam[0] * xo[2],
            xo[2] + cam[0] * xo[1] - cam[1] * xo[0],
        ]
    };
    let p0 = xc[0] / xc[2];
    let p1 = xc[1] / xc[2];
    let rsq = p0 * p0 + p1 * p1;
    let distortion = cam[9] * rsq + cam[10] * rsq * rsq + 1.0;
    let proj0 = p0 * distortion * cam[6] + cam[7];
    let proj1 = p1 * distortion * cam[6] + cam[8];
    [w * (proj0 - feat[0]), w * (proj1 - feat[1])]
}

/// Forward mode: 15 passes per observation, each giving one column of the 2 x 15 block.
pub fn jacobian_dual(ba: &Ba) -> Vec<f64> {
    let mut jac = vec![0.0; JAC * ba.obs.len()];
    for (i, (&(c, pt), block)) in ba.obs.iter().zip(jac.chunks_exact_mut(JAC)).enumerate() {
        let mut v = [Dual64::from(0.0); INPUTS];
        for (k, &value) in ba.cams[c].iter().chain(&ba.points[pt]).enumerate() {
            v[k] = Dual64::from(value);
        }
        v[CAM + 3] = Dual64::from(ba.weights[i]);
        for k in 0..INPUTS {
            v[k].eps = 1.0;
            let zero = Dual64::from(0.0);
            let e = reproj_peer(&v[..CAM], &v[CAM..CAM + 3], v[CAM + 3], &ba.feats[i], zero);
            v[k].eps = 0.0;
            block[k] = e[0].eps;
            block[INPUTS + k] = e[1].eps;
        }
        block[2 * INPUTS] = -2.0 * ba.weights[i];
    }
    jac
}

/// The tape crate: one tape per observation (cleared, not reallocated), two reverse sweeps.
pub fn jacobian_tape(tape: &Tape, ba: &Ba) -> Vec<f64> {
    let mut jac = vec![0.0; JAC * ba.obs.len()];
    let mut inputs = [0.0; INPUTS];
    for (i, (&(c, pt), block)) in ba.obs.iter().zip(jac.chunks_exact_mut(JAC)).enumerate() {
        tape.clear();
        inputs[..CAM].copy_from_slice(&ba.cams[c]);
        inputs[CAM..CAM + 3].copy_from_slice(&ba.points[pt]);
        inputs[CAM + 3] = ba.weights[i];
        let v = tape.add_vars(&inputs);
        let zero = tape.add_var(0.0);
        let e = reproj_peer(&v[..CAM], &v[CAM..CAM + 3], v[CAM + 3], &ba.feats[i], zero);
        for (row, err) in e.iter().enumerate() {
            let g = err.grad().wrt(&v);
            block[row * INPUTS..(row + 1) * INPUTS].copy_from_slice(&g);
        }
        let w = tape.add_var(ba.weights[i]);
        block[2 * INPUTS] = (1.0 - w * w).grad().wrt(&w);
    }
    jac
}
