//! Property test: the expansion entry point [`crate::expand::differentiate`] never panics.
//!
//! Every case feeds it an attribute and an item built by a seeded generator, calls it under
//! `catch_unwind`, and checks that the output is well-formed: Rust items (`syn::File`)
//! whose `compile_error!`s each carry a message. The inputs are
//!
//! - a corpus of supported functions (copied below from `tests/differentiate/*.rs` and
//!   `docs/supported.md`, plus every `#[differentiate]` item found in `tests/differentiate`
//!   and `tests/ui` when the files are there), unchanged or mutated at the token level:
//!   tokens and token trees deleted, duplicated, swapped, moved, wrapped or unwrapped;
//!   identifiers, literals, operators and punctuation replaced; random tokens inserted;
//!   pieces of other corpus functions spliced in; parameter and return types changed;
//! - random functions from the supported subset (scalars, integers, slices, local `Vec`
//!   writes, `if`/`match`, `for`/`while`/`loop`, iterator reductions, calls) with now and
//!   then one construct from outside it, to reach the analysis and code generation; also
//!   mutated;
//! - random functions from a small grammar much wider than the supported subset (closures,
//!   macros, struct literals, references, nested items, labels, `?`, `async`, odd types and
//!   patterns, raw identifiers, ...), also mutated;
//! - token soups that are no item at all;
//! - garbage attributes: random tokens, `wrt(...)` with random contents, unknown options.
//!
//! One case in eight also formats the generated code as `dump` does (prettyplease). A case
//! that runs longer than the hang limit fails the test too.
//!
//! Each case is generated from `(seed, case number)` alone, so any case can be replayed.
//!
//! ```text
//! # default run: 10 000 cases, about 10 s in the test profile
//! cargo test -p autodiff-macros never_panics -- --nocapture
//! # long run (line tables make the panic locations inside dependencies point at our frame;
//! # `dump` output is printed too, so keep the summary lines)
//! CARGO_PROFILE_RELEASE_DEBUG=line-tables-only AUTODIFF_NEVER_PANICS_CASES=1000000 \
//!     AUTODIFF_NEVER_PANICS_SEED=2026 AUTODIFF_NEVER_PANICS_SECONDS=600 \
//!     cargo test -p autodiff-macros --release never_panics -- --nocapture 2>&1 | grep -a -A8 '^never_panics:\|^==='
//! # one file of functions, each with its outcome and output (a reduced case, say)
//! AUTODIFF_NEVER_PANICS_INPUT=case.rs cargo test -p autodiff-macros expand_input_file -- --nocapture
//! ```
//!
//! Environment variables: `AUTODIFF_NEVER_PANICS_CASES` (number of cases),
//! `AUTODIFF_NEVER_PANICS_SEED` (decimal or `0x` hex), `AUTODIFF_NEVER_PANICS_START`
//! (first case number: with `CASES=1`, replays one case), `AUTODIFF_NEVER_PANICS_SECONDS`
//! (stop early after this many seconds), `AUTODIFF_NEVER_PANICS_HANG_SECONDS` (a case
//! running longer is a hang; default 120), `AUTODIFF_NEVER_PANICS_VERBOSE=1` (the most
//! frequent diagnostics, and each replayed case's input and output),
//! `AUTODIFF_NEVER_PANICS_SILENT_OUT=file.rs` (the functions left to rustc, without their
//! attribute, one module each, to compile: rustc must reject every one).
//!
//! On a panic the test prints the seed, the case number, the attribute and item tokens,
//! the panic message and location, and an input reduced by deleting token trees while the
//! panic stays at the same location.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};
use syn::visit::Visit;

use crate::expand;

/// Cases of the default run: about 10 s in the test profile on an idle core.
const DEFAULT_CASES: u64 = 10_000;
const DEFAULT_SEED: u64 = 0x00AD_0006;
/// A case that runs this long is reported as a hang (`AUTODIFF_NEVER_PANICS_HANG_SECONDS`).
const HANG_LIMIT: Duration = Duration::from_secs(120);

// -----------------------------------------------------------------------------------------
// Random numbers
// -----------------------------------------------------------------------------------------

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn for_case(seed: u64, case: u64) -> Self {
        Rng(mix(seed ^ mix(case.wrapping_add(0x9E37_79B9_7F4A_7C15))))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `0..n` (0 when `n == 0`).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn word(&mut self, items: &[&'static str]) -> &'static str {
        items[self.below(items.len())]
    }
}

// -----------------------------------------------------------------------------------------
// The corpus of supported functions
// -----------------------------------------------------------------------------------------

/// `(attribute arguments, function)`, from tests/differentiate/*.rs and docs/supported.md.
const CORPUS: &[(&str, &str)] = &[
    ("", "fn f(x1: f64, x2: f64) -> f64 { x1.ln() + x1 * x2 - x2.sin() }"),
    (
        "",
        r#"fn piecewise(x: f64) -> f64 {
            if x < 0.0 { -x * x } else if x < 1.0 { x.sin() } else { x.exp() }
        }"#,
    ),
    (
        "",
        r#"fn statement_if(x: f64, y: f64) -> f64 {
            let mut acc = x * y;
            if acc > 1.0 { acc = acc.ln(); acc *= y; } else { acc += x.cos(); }
            let mut z = 2.0;
            if x > y { z = z * x; }
            acc * z
        }"#,
    ),
    (
        "",
        r#"fn early_return(x: f64, n: i32) -> f64 {
            if n == 0 { return x; }
            let y = x * x;
            if y > 4.0 { return y.sqrt() * 3.0; }
            let mut z = y + x;
            if n > 2 { z = z * z; }
            z
        }"#,
    ),
    (
        "",
        r#"fn by_mode(x: f64, mode: Mode, k: u8) -> f64 {
            let base = match mode {
                Mode::Square => x * x,
                Mode::Cube => x * x * x,
                Mode::Sine => x.sin(),
            };
            let scaled = match k { 0 => base, 1 | 2 => base * 2.0, _other => base + x };
            match k > 3 { true => scaled * x, false => scaled }
        }"#,
    ),
    (
        "",
        r#"fn tuples_and_blocks(a: f64, b: f64) -> f64 {
            let (p, q) = (a * b, a - b);
            let r = { let t = p + q; t * (q) };
            let (mut u, v) = if r > 0.0 { (r, p) } else { (-r, q) };
            u -= v;
            u /= 2.0;
            let p = u * v;
            p
        }"#,
    ),
    (
        "",
        r#"fn integer_arguments(x: f64, n: i32, flag: bool, scale: usize) -> f64 {
            let m = n * 2 + 1;
            let k = m as f64;
            let s = scale as f64 / 2.0;
            let base = if flag && n > 0 { x.powi(m) } else { x * k };
            base * s + (n as f64) * x
        }"#,
    ),
    (
        "",
        r#"fn short_circuit(x: f64, y: f64) -> f64 {
            if x > 0.0 && y / x > 1.0 || y < -5.0 { x * y } else { x + y }
        }"#,
    ),
    ("", "fn two_outputs(x: f64, y: f64) -> (f64, f64) { (x * y, x.sin() + y) }"),
    (
        "",
        r#"fn uninitialised_then_assigned(x: f64) -> f64 {
            let y;
            if x > 1.0 { y = x * 3.0; } else { y = x * x; }
            y
        }"#,
    ),
    (
        "",
        "fn polar_scaled(r: f64, theta: f64) -> (f64, f64) { polar(2.0 * r, theta) }",
    ),
    (
        "",
        r#"pub fn gauss<T: Float>(x: T, s: T) -> T {
            let two = T::from(2.0).unwrap();
            (-(x * x) / (two * s * s)).exp()
        }"#,
    ),
    ("wrt(x)", "pub fn scaled(x: f64, s: f64) -> f64 { x * s.sin() }"),
    ("", "pub fn cube<T>(x: T) -> T where T: Float { x * x * x }"),
    (
        "",
        r#"fn uses_callees(a: f64, b: f64) -> f64 {
            let g = inner::gauss(a, b);
            let s = inner::scaled(b, a);
            let c = inner::deeper::cube::<f64>(g + s);
            c * a + g
        }"#,
    ),
    (
        "",
        r#"fn generic_caller<T: Float>(x: T, y: T, n: i32) -> T {
            let half = T::from(0.5).unwrap();
            let g = inner::gauss(x, y);
            inner::deeper::cube(g) * half + x.powi(n) * T::one()
        }"#,
    ),
    ("wrt(y)", "fn partial(x: f64, y: f64, z: f64) -> f64 { x * y * z + y.exp() }"),
    ("", "fn passes_borrowed_constant(x: f64, n: &i32) -> f64 { powi_by_ref(x, n) * x }"),
    (
        "",
        r#"fn rosenbrock<T: Float>(x: &[T]) -> T {
            let hundred = T::from(100.0).unwrap();
            let mut sum = T::zero();
            for i in 0..x.len() - 1 {
                let t = x[i + 1] - x[i] * x[i];
                let u = T::one() - x[i];
                sum = sum + hundred * t * t + u * u;
            }
            sum
        }"#,
    ),
    (
        "",
        r#"fn running_sum(x: &[f64]) -> Vec<f64> {
            let mut out = Vec::with_capacity(x.len());
            let mut acc = 0.0;
            for v in x.iter() { acc += v; out.push(acc); }
            out
        }"#,
    ),
    (
        "",
        r#"fn fill_then_update(x: &[f64]) -> f64 {
            let n = x.len();
            let mut v = vec![0.0; n];
            for i in 0..n { v[i] = x[i] * x[i]; }
            for i in 1..n { v[i] += v[i - 1] * x[i]; }
            let mut s = 0.0;
            for i in 0..n { s = s * 0.5 + v[i]; }
            s
        }"#,
    ),
    (
        "",
        r#"fn smooth_in_place(x: &[f64]) -> f64 {
            let n = x.len();
            let mut v = x.to_vec();
            for _ in 0..3 { for i in 1..n { v[i] = 0.5 * (v[i] + v[i - 1]); } }
            for i in 0..n { v[i] = v[i].sin() * v[i]; }
            let mut s = 0.0;
            for i in 0..n { s = s * 0.7 + v[i] * (i as f64 + 1.0); }
            s
        }"#,
    ),
    (
        "",
        r#"fn reverse_by_swaps(x: &[f64]) -> f64 {
            let n = x.len();
            let mut v = x.to_vec();
            for i in 0..n / 2 { v.swap(i, n - 1 - i); }
            v.swap(0, 1);
            let mut s = 0.0;
            for i in 0..n { s += v[i] * v[i] * (i as f64 + 1.0); }
            s
        }"#,
    ),
    (
        "",
        r#"fn pushed(x: &[f64]) -> f64 {
            let mut v = Vec::with_capacity(x.len() + 1);
            for i in 0..x.len() { v.push(x[i].sin()); }
            v.push(2.0);
            let mut w = Vec::new();
            w.push(x[0] * 3.0);
            w.push(v[v.len() - 2]);
            let mut s = 0.0;
            for i in 0..v.len() { s = s * 0.5 + v[i] * v[i]; }
            s + w[0] * w[1]
        }"#,
    ),
    (
        "",
        r#"fn reassigned_vector(x: &[f64]) -> f64 {
            let n = x.len();
            let mut v = x.to_vec();
            for _ in 0..3 {
                let mut w = vec![0.0; n];
                for i in 0..n { w[i] = v[i] * 0.5 + v[(i + 1) % n].sin(); }
                v = w;
            }
            let mut s = 0.0;
            for i in 0..n { s += v[i] * v[i]; }
            s
        }"#,
    ),
    (
        "",
        r#"fn local_fixed_array(x: &[f64; 2], y: f64) -> f64 {
            let mut a = [0.0; 3];
            a[0] = x[0] * y;
            a[1] = a[0] + x[1];
            a[2] = a[1] * a[1];
            a[1] = a[2].sqrt() * 3.0;
            a[0] + a[1] + a[2]
        }"#,
    ),
    (
        "",
        r#"fn cumsum(x: &[f64]) -> Vec<f64> {
            let mut y = vec![0.0; x.len()];
            let mut acc = 0.0;
            for i in 0..x.len() { acc += x[i]; y[i] = acc; }
            y
        }"#,
    ),
    (
        "",
        r#"fn cross(a: [f64; 3], b: &[f64; 3]) -> [f64; 3] {
            [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
        }"#,
    ),
    (
        "",
        r#"fn fixed_output_loop(x: &[f64; 3], s: f64) -> [f64; 3] {
            let mut y = [0.0; 3];
            y[0] = x[0] * x[0] * s;
            for i in 1..3 { y[i] = x[i] * x[i] * s + y[i - 1]; }
            y
        }"#,
    ),
    (
        "",
        r#"fn neighbours(x: &[f64]) -> f64 {
            let n = x.len();
            let mut s = 0.0;
            for i in 0..n - 1 { s += x[i] * x[i + 1] + x[n - 1 - i].cos(); }
            s
        }"#,
    ),
    (
        "",
        "fn cubes_vec(x: Vec<f64>) -> f64 { let mut s = 0.0; for v in x { s += v * v * v; } s }",
    ),
    (
        "",
        r#"fn cubes_array_ref(x: &[f64; 4]) -> f64 {
            let mut s = 0.0;
            for v in x.iter() { s += v * v * v; }
            s
        }"#,
    ),
    (
        "",
        r#"fn weighted_norm<T: Float>(x: &[T], w: &[T]) -> T {
            let mut s = T::zero();
            for i in 0..x.len() { s = s + w[i] * x[i] * x[i]; }
            s.sqrt()
        }"#,
    ),
    (
        "wrt(x)",
        r#"fn wrt_slice(x: &[f64], w: &[f64]) -> f64 {
            let mut s = 0.0;
            for i in 0..x.len() { s += w[i] * x[i].exp(); }
            s
        }"#,
    ),
    ("", "fn iter_sum(x: &[f64]) -> f64 { x.iter().sum::<f64>() }"),
    // a raw identifier written through `iter_mut()` items (a panic once: `Ident::new("r#in")`)
    (
        "",
        "fn raw_iter_mut<T: Float>(r#in: [T; 2]) -> T { let mut r#in = r#in; for (w, v) in r#in.iter().zip(r#in.iter_mut()) { *v *= *w; } r#in[0] }",
    ),
    ("", "fn iter_map_sum(x: &[f64]) -> f64 { x.iter().map(|v| v * v).sum::<f64>() }"),
    (
        "",
        "fn iter_zip_map_sum(x: &[f64], y: &[f64]) -> f64 { x.iter().zip(y).map(|(a, b)| a * b).sum::<f64>() }",
    ),
    ("", "fn iter_fold(x: &[f64]) -> f64 { x.iter().fold(0.0, |acc, v| acc + v.sin()) }"),
    ("", "fn iter_product(x: &[f64]) -> f64 { x.iter().product::<f64>() }"),
    (
        "",
        "fn iter_copied_sum(x: &[f64]) -> f64 { let s: f64 = x.iter().copied().sum(); s * s }",
    ),
    (
        "",
        r#"fn range_map_sum(x: &[f64], w: &[f64]) -> f64 {
            let n = x.len();
            let s: f64 = (0..n).map(|i| x[i] * w[i]).sum();
            s
        }"#,
    ),
    (
        "",
        "fn iter_fold_nonlinear(x: &[f64]) -> f64 { x.iter().fold(0.25, |acc, &v| 0.5 * acc * acc + v) }",
    ),
    (
        "",
        r#"fn calls_with_local_vec(x: &[f64], s: f64) -> f64 {
            let mut v = vec![0.0; x.len()];
            for i in 0..x.len() { v[i] = x[i] * s; }
            inner_energy(&v) + s
        }"#,
    ),
    (
        "",
        r#"fn halve_until_small(x: f64, limit: f64) -> f64 {
            let mut y = x;
            let mut steps = 0;
            while y.abs() > limit { y = y * 0.5 + limit.sin(); steps += 1; }
            y * steps as f64
        }"#,
    ),
    (
        "",
        r#"fn loop_with_break_value(x: f64) -> f64 {
            let mut y = x;
            let z = loop {
                y = y * y + 0.1;
                if y > 10.0 { break y.ln(); }
            };
            z * x
        }"#,
    ),
    (
        "",
        r#"fn skip_and_return(x: &[f64], cap: f64) -> f64 {
            let mut s = 0.0;
            for (i, v) in x.iter().enumerate() {
                if i % 2 == 1 { continue; }
                s += v * v;
                if s > cap { return s.sqrt(); }
            }
            s
        }"#,
    ),
    (
        "",
        r#"fn stepped_reversed<T: Float>(x: &[T], k: usize) -> T {
            let mut s = T::zero();
            for i in (0..x.len()).rev().step_by(k) { s = s + x[i].exp(); }
            for i in (1..=k).step_by(2) { s = s * T::from(i).unwrap(); }
            for &v in x.iter().rev() { s = s - v; }
            for (a, b) in x.iter().zip(x) { s = s + *a * *b; }
            s
        }"#,
    ),
    (
        "",
        r#"fn primitives_in_all_forms(x: f64, y: f64, z: f64) -> f64 {
            f64::sin(x) + f64::atan2(x, y) + f64::powf(y, z) + Float::max(x, z)
                + num_traits::Float::mul_add(x, y, z) + x.hypot(1.5) + y.clamp(x, 4.0)
                + x.powi(3) + z.abs() + x.to_degrees() + (x * y).tanh().recip()
                + std::f64::consts::PI * x.floor() + f64::EPSILON
        }"#,
    ),
    (
        "",
        r#"fn more_generic<T: Float>(x: T, y: T) -> T {
            T::exp(x) * T::hypot(x, y) - Float::abs(y) + T::powi(x, 3) + Float::ln(T::sqrt(y))
                + T::EPSILON
        }"#,
    ),
    (
        "",
        r#"/// Documented, with another attribute.
        #[inline]
        pub(crate) fn deferred_tuple_swap(a: f64, b: f64, n: i64) -> (f64, f64) {
            let (mut p, mut q) = (a, b);
            let c: f64;
            c = a * 2.0;
            for _ in 0..n { (p, q) = (q, p * c); }
            let r = match n { 0 => p, m => q * m as f64 };
            (r, q as f32 as f64)
        }"#,
    ),
    (
        "",
        r#"fn f32_and_casts(x: f32, v: Vec<f64>, flags: &[usize]) -> f32 {
            let mut t = x as f64;
            for i in 0..v.len() { t = t + v[i] * flags[i] as f64; }
            let w = [t, t * 2.0];
            (w[0] + w[1]) as f32 * x
        }"#,
    ),
    (
        "",
        r#"fn springs(x: &[f64], edges: &[(usize, usize)], tris: &[[usize; 3]]) -> f64 {
            let mut e = 0.0;
            for k in 0..edges.len() {
                let (a, b) = edges[k];
                e += (x[a] - x[b]).powi(2) + x[edges[k].0];
            }
            for &[i, j, l] in tris { e += x[i] * x[j] - x[l]; }
            e
        }"#,
    ),
    (
        "wrt(w)",
        r#"fn batch(w: &[f64], xs: &[Vec<f64>], ys: &[f64]) -> f64 {
            let mut s = 0.0;
            for (k, x) in xs.iter().enumerate() { s += (w[0] * x[0] + w[1] - ys[k]).powi(2); }
            s + xs[0][1] * w[0]
        }"#,
    ),
    (
        "",
        r#"fn rotated(p: &Vector2<f64>, th: f64) -> f64 {
            let q = Vector2::new(th.cos() * p.x - th.sin() * p.y, th.sin() * p.x + th.cos() * p.y);
            let m = Matrix2::new(th, 1.0, p.y, th);
            q.x * q.y + m.m12 * m.m21
        }"#,
    ),
    (
        "",
        r#"fn assigns_in_short_circuit(x: f64, y0: f64) -> f64 {
            let mut y = y0;
            for _ in 0..3 { if x > y || { y = y * x + 1.0; y > 5.0 } { y = y * 2.0; } }
            let c = x > y && { y = y * x; true };
            if c { y * 3.0 } else { y }
        }"#,
    ),
    // inputs that once made the expansion panic (seed 0x7ed): a path keyword as an assigned
    // name, which cannot be a raw identifier; a closure body `{ .. } as f32`
    ("", "fn local_fixed_array(y: f64) -> f64 { super[1] = 3.0; 2 }"),
    ("", "fn f(x: &[f64]) -> f64 { ().map(|v| { } as f32).sum() }"),
    ("", "fn f(m: DMatrix<f64>) -> f64 { let activated = m.map(|v| crate); activated }"),
];

/// Every `#[differentiate]` item in the repository's tests, when the files are there.
fn repository_corpus() -> Vec<(TokenStream, TokenStream)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests");
    let mut files = Vec::new();
    for dir in ["differentiate", "ui"] {
        if let Ok(entries) = std::fs::read_dir(root.join(dir)) {
            files.extend(
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "rs")),
            );
        }
    }
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(file) = syn::parse_file(&text) else {
            continue;
        };
        collect_items(&file.items, &mut out);
    }
    out
}

fn take_differentiate_attr(attrs: &mut Vec<syn::Attribute>) -> Option<TokenStream> {
    let position = attrs.iter().position(|a| {
        a.path()
            .segments
            .last()
            .is_some_and(|s| s.ident == "differentiate")
    })?;
    let attr = attrs.remove(position);
    Some(match attr.meta {
        syn::Meta::List(list) => list.tokens,
        _ => TokenStream::new(),
    })
}

fn collect_items(items: &[syn::Item], out: &mut Vec<(TokenStream, TokenStream)>) {
    use quote::ToTokens;
    for item in items {
        let mut item = item.clone();
        let attr = match &mut item {
            syn::Item::Fn(f) => take_differentiate_attr(&mut f.attrs),
            syn::Item::Struct(s) => take_differentiate_attr(&mut s.attrs),
            syn::Item::Enum(e) => take_differentiate_attr(&mut e.attrs),
            syn::Item::Const(c) => take_differentiate_attr(&mut c.attrs),
            syn::Item::Mod(m) => {
                if let Some((_, inner)) = &m.content {
                    collect_items(inner, out);
                }
                None
            }
            // a marked block goes in whole (its methods keep their marks), as the attribute
            // on it receives it
            syn::Item::Impl(i)
                if i.attrs.iter().any(|a| {
                    a.path()
                        .segments
                        .last()
                        .is_some_and(|s| s.ident == "differentiate")
                }) =>
            {
                take_differentiate_attr(&mut i.attrs)
            }
            syn::Item::Impl(i) => {
                for impl_item in &mut i.items {
                    if let syn::ImplItem::Fn(f) = impl_item {
                        if let Some(attr) = take_differentiate_attr(&mut f.attrs) {
                            out.push((attr, f.to_token_stream()));
                        }
                    }
                }
                None
            }
            _ => None,
        };
        if let Some(attr) = attr {
            out.push((attr, item.to_token_stream()));
        }
    }
}

// -----------------------------------------------------------------------------------------
// Pools of tokens
// -----------------------------------------------------------------------------------------

const IDENTS: &[&str] = &[
    "x",
    "y",
    "z",
    "a",
    "b",
    "n",
    "i",
    "k",
    "v",
    "w",
    "s",
    "t",
    "acc",
    "sum",
    "out",
    "T",
    "U",
    "N",
    "f64",
    "f32",
    "i32",
    "usize",
    "u8",
    "bool",
    "Float",
    "Vec",
    "Self",
    "self",
    "super",
    "crate",
    "fn",
    "let",
    "mut",
    "if",
    "else",
    "match",
    "for",
    "in",
    "while",
    "loop",
    "break",
    "continue",
    "return",
    "as",
    "ref",
    "move",
    "async",
    "await",
    "unsafe",
    "const",
    "static",
    "struct",
    "enum",
    "impl",
    "dyn",
    "where",
    "type",
    "use",
    "mod",
    "pub",
    "true",
    "false",
    "_",
    "sin",
    "cos",
    "exp",
    "ln",
    "sqrt",
    "powi",
    "powf",
    "max",
    "min",
    "abs",
    "clamp",
    "atan2",
    "mul_add",
    "hypot",
    "iter",
    "map",
    "sum",
    "product",
    "fold",
    "zip",
    "enumerate",
    "rev",
    "step_by",
    "copied",
    "filter",
    "collect",
    "len",
    "push",
    "swap",
    "clone",
    "to_vec",
    "from",
    "unwrap",
    "zero",
    "one",
    "EPSILON",
    "PI",
    "consts",
    "Some",
    "None",
    "Box",
    "String",
    "vec",
    "println",
    "r#type",
    "r#match",
    "r#fn",
    "r#loop",
    "x1",
    "x2",
    "d_x",
    "x_saved",
    "x_carry",
    "carry",
    "shift",
    "saved",
    "at_index",
    "loop0",
    "branch0",
    "call0",
    "range0",
    "d_output",
    "_marker",
    "v0",
    "Then",
    "Else",
    "Arm0",
    "f_grad",
    "f_pullback",
    "__autodiff_pullback_f",
    "FPullback",
    "output_len",
    "x_len",
    "helper",
    "inner",
    "Mode",
    "Square",
    "undefined",
    "é",
    "_x",
    "__",
];

const LITERALS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "0.0",
    "1.0",
    "2.0",
    "0.5",
    "1e-3",
    "1e308",
    "1e-320",
    "1e999",
    "3f32",
    "2.5f64",
    "0usize",
    "255u8",
    "1i32",
    "7u64",
    "1_000.0",
    "0x1F",
    "0b101",
    "0o7",
    "1.",
    "18446744073709551615",
    "340282366920938463463374607431768211456",
    "'a'",
    "'\\n'",
    "\"str\"",
    "\"\"",
    "b'a'",
    "b\"bytes\"",
    "r\"raw\"",
    "r#\"raw\"#",
    "1e10",
    "0.1e-5_f64",
    "1f64",
    "2i8",
    "1.5e+3",
];

const PUNCTS: &[&str] = &[
    "+", "-", "*", "/", "%", "^", "!", "&", "|", "&&", "||", "<<", ">>", "+=", "-=", "*=", "/=",
    "%=", "^=", "&=", "|=", "<<=", ">>=", "=", "==", "!=", ">", "<", ">=", "<=", "@", ".", "..",
    "...", "..=", ",", ";", ":", "::", "->", "=>", "#", "$", "?", "~", "'a", "'static",
];

/// Small fragments inserted into token streams.
const SNIPPETS: &[&str] = &[
    "return",
    "return x;",
    "break",
    "break 'a",
    "continue",
    "..",
    "?",
    "x.iter()",
    "std::mem::swap(&mut x, &mut y);",
    "let (s, c) = x.sin_cos();",
    "T::sin_cos(x)",
    "std::mem::replace(&mut x, 1.0)",
    "for o in x.iter_mut() { *o += 1.0; }",
    ".filter(|v| **v > 0.0)",
    ".all(|v| *v > 0.0)",
    "v.reverse();",
    "const C: f64 = 2.0;",
    "use std::f64::consts::PI;",
    "x.iter().for_each(|v| s += v);",
    ".for_each(|o| { return; })",
    "{ use std::f64::consts::E; }",
    "const _: usize = 1;",
    "v.reserve(3);",
    "v.insert(0, 1.0);",
    ".any(|&v| v < 1.0)",
    "|v| v",
    "vec![0.0; 3]",
    "{}",
    "()",
    "[]",
    "'a:",
    "#[inline]",
    "&mut",
    "as f32",
    "let",
    "let x =",
    "=>",
    "->",
    "::",
    ";",
    ",",
    "<T>",
    "<T: Float>",
    "::<f64>",
    ".sum::<f64>()",
    ".0",
    ".await",
    "unsafe",
    "async",
    "move",
    "|| 1.0",
    "x[0..2]",
    "S { a: 1.0 }",
    "println!()",
    "if x > 0.0 { x } else { y }",
    "match n { 0 => x, _ => y }",
    "match n { 0 => x, k if k > 2 => y, _ => z }",
    "for i in 0..n {}",
    "while x > 0.0 {}",
    "loop { break; }",
    "x = x + 1.0;",
    "let (a, b) = (x, y);",
    "f(x)",
    "x.sin()",
    "x.powi(2)",
    "T::from(1.5).unwrap()",
    "Self::C",
    "<T as Float>::one()",
    "fn g() {}",
    "struct S;",
    "impl S {}",
    "mod m {}",
    "extern \"C\"",
    "where T: Float",
    "dyn Fn(f64) -> f64",
    "&'a",
    "r#type",
    "_",
    "'outer: loop {}",
    "x?",
    "&raw const x",
];

const TYPES: &[&str] = &[
    "f64",
    "f32",
    "T",
    "U",
    "i32",
    "i64",
    "usize",
    "u8",
    "u128",
    "bool",
    "char",
    "str",
    "String",
    "Self",
    "_",
    "!",
    "()",
    "Mode",
    "Float",
    "num_traits::Float",
    "std::f64",
    "crate::Foo",
    "T::Output",
    "<T as Float>::Out",
    "dyn Float",
    "impl Float",
    "impl Fn(f64) -> f64",
    "fn(f64) -> f64",
    "HashMap<usize, f64>",
    "Box<f64>",
    "Option<f64>",
    "Rc<T>",
    "Vec<f64>",
    "Vec<T>",
    "Vec<usize>",
    "Vec<Vec<f64>>",
    "Vec<(f64, f64)>",
    "[f64; 3]",
    "[T; N]",
    "[f64; 0]",
    "[usize; 2]",
    "[f64]",
    "&'a f64",
    "&'static str",
    "*const f64",
    "*mut T",
    "(f64,)",
    "(f64)",
    "(f64, f64)",
    "(T, T, T)",
    "((f64, f64), f64)",
    "&str",
    "&[usize]",
    "&[(usize, usize)]",
    "&[[usize; 3]]",
    "(usize, (usize, usize))",
    "Vec<[usize; 2]>",
    "&[(usize, f64)]",
    "&Vec<f64>",
    "&[f64; 2]",
    "&&f64",
    "&mut Vec<f64>",
    "std::vec::Vec<f64>",
    "alloc::vec::Vec<T>",
    "Vec<f64, A>",
    "Vec::<f64>",
    "[Vec<f64>; 2]",
    "&dyn Fn(f64) -> f64",
    "r#type",
    "f64::Foo",
    "é",
    "[f64; N * 2]",
    "[f64; { 3 }]",
];

fn tokens(text: &str) -> TokenStream {
    TokenStream::from_str(text).unwrap_or_else(|e| panic!("bad fragment `{text}`: {e}"))
}

// -----------------------------------------------------------------------------------------
// Token trees that can be edited in place
// -----------------------------------------------------------------------------------------

#[derive(Clone)]
enum Tok {
    Leaf(TokenTree),
    Group(Delimiter, Vec<Tok>),
}

fn to_toks(stream: TokenStream) -> Vec<Tok> {
    stream
        .into_iter()
        .map(|tree| match tree {
            TokenTree::Group(g) => Tok::Group(g.delimiter(), to_toks(g.stream())),
            leaf => Tok::Leaf(leaf),
        })
        .collect()
}

fn from_toks(toks: &[Tok]) -> TokenStream {
    toks.iter()
        .map(|tok| match tok {
            Tok::Leaf(tree) => tree.clone(),
            Tok::Group(delimiter, inner) => {
                TokenTree::Group(Group::new(*delimiter, from_toks(inner)))
            }
        })
        .collect()
}

/// Paths (child indices) of every token sequence: the top level and each group's content.
fn sequence_paths(toks: &[Tok], prefix: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
    out.push(prefix.clone());
    for (i, tok) in toks.iter().enumerate() {
        if let Tok::Group(_, inner) = tok {
            prefix.push(i);
            sequence_paths(inner, prefix, out);
            prefix.pop();
        }
    }
}

fn sequence_mut<'a>(toks: &'a mut Vec<Tok>, path: &[usize]) -> &'a mut Vec<Tok> {
    match path.split_first() {
        None => toks,
        Some((&i, rest)) => match &mut toks[i] {
            Tok::Group(_, inner) => sequence_mut(inner, rest),
            Tok::Leaf(_) => unreachable!("paths lead to groups"),
        },
    }
}

fn random_sequence<'a>(rng: &mut Rng, toks: &'a mut Vec<Tok>) -> &'a mut Vec<Tok> {
    let mut paths = Vec::new();
    sequence_paths(toks, &mut Vec::new(), &mut paths);
    let path = rng.pick(&paths).clone();
    sequence_mut(toks, &path)
}

/// Locations `(sequence path, index)` of the leaves accepted by `keep`.
fn leaves(
    toks: &[Tok],
    prefix: &mut Vec<usize>,
    keep: &dyn Fn(&TokenTree) -> bool,
    out: &mut Vec<(Vec<usize>, usize)>,
) {
    for (i, tok) in toks.iter().enumerate() {
        match tok {
            Tok::Leaf(tree) if keep(tree) => out.push((prefix.clone(), i)),
            Tok::Leaf(_) => {}
            Tok::Group(_, inner) => {
                prefix.push(i);
                leaves(inner, prefix, keep, out);
                prefix.pop();
            }
        }
    }
}

fn random_delimiter(rng: &mut Rng) -> Delimiter {
    *rng.pick(&[
        Delimiter::Parenthesis,
        Delimiter::Brace,
        Delimiter::Bracket,
        Delimiter::None,
    ])
}

/// A few random tokens: identifiers, literals, operators, fragments or an expression.
fn random_fragment(rng: &mut Rng) -> Vec<Tok> {
    let text = match rng.below(6) {
        0 => rng.pick(IDENTS).to_string(),
        1 => rng.pick(LITERALS).to_string(),
        2 => rng.pick(PUNCTS).to_string(),
        3 | 4 => rng.pick(SNIPPETS).to_string(),
        _ => {
            let mut g = Gen::new(rng, 6);
            g.vars = vec!["x".into(), "y".into(), "v".into(), "n".into()];
            g.expr(2)
        }
    };
    to_toks(tokens(&text))
}

/// Ranges `(sequence path, start, end)` of the parameter types and the return type of the
/// function at the top level of `toks`.
fn type_ranges(toks: &[Tok]) -> Vec<(Vec<usize>, usize, usize)> {
    let is_punct =
        |tok: &Tok, c: char| matches!(tok, Tok::Leaf(TokenTree::Punct(p)) if p.as_char() == c);
    let mut out = Vec::new();
    let Some(fn_at) = toks
        .iter()
        .position(|t| matches!(t, Tok::Leaf(TokenTree::Ident(i)) if i == "fn"))
    else {
        return out;
    };
    let Some(params_at) = toks[fn_at..]
        .iter()
        .position(|t| matches!(t, Tok::Group(Delimiter::Parenthesis, _)))
        .map(|p| p + fn_at)
    else {
        return out;
    };
    if let Tok::Group(_, params) = &toks[params_at] {
        let mut i = 0;
        while i < params.len() {
            // a single `:` (not part of `::`) starts a type that ends at a `,` outside `<>`
            let single_colon = is_punct(&params[i], ':')
                && !(i + 1 < params.len() && is_punct(&params[i + 1], ':'))
                && !(i > 0 && is_punct(&params[i - 1], ':'));
            if single_colon {
                let start = i + 1;
                let mut depth = 0i32;
                let mut end = start;
                while end < params.len() {
                    if is_punct(&params[end], '<') {
                        depth += 1;
                    } else if is_punct(&params[end], '>')
                        && !(end > 0 && is_punct(&params[end - 1], '-'))
                    {
                        depth -= 1;
                    } else if is_punct(&params[end], ',') && depth <= 0 {
                        break;
                    }
                    end += 1;
                }
                out.push((vec![params_at], start, end));
                i = end;
            }
            i += 1;
        }
    }
    // `-> type` up to the body or `where`
    let mut i = params_at + 1;
    while i + 1 < toks.len() {
        if is_punct(&toks[i], '-') && is_punct(&toks[i + 1], '>') {
            let start = i + 2;
            let end = toks[start..]
                .iter()
                .position(|t| {
                    matches!(t, Tok::Group(Delimiter::Brace, _))
                        || matches!(t, Tok::Leaf(TokenTree::Ident(w)) if w == "where")
                })
                .map_or(toks.len(), |p| p + start);
            out.push((Vec::new(), start, end));
            break;
        }
        i += 1;
    }
    out
}

/// Applies one random token-level mutation.
fn mutate(rng: &mut Rng, toks: &mut Vec<Tok>, donors: &[Vec<Tok>]) {
    match rng.below(16) {
        // delete one or a few token trees
        0 | 1 => {
            let seq = random_sequence(rng, toks);
            if !seq.is_empty() {
                let at = rng.below(seq.len());
                let n = rng.range(1, 3).min(seq.len() - at);
                seq.drain(at..at + n);
            }
        }
        // duplicate a token tree
        2 => {
            let seq = random_sequence(rng, toks);
            if !seq.is_empty() {
                let at = rng.below(seq.len());
                let copy = seq[at].clone();
                seq.insert(at + 1, copy);
            }
        }
        // swap two token trees of one sequence
        3 => {
            let seq = random_sequence(rng, toks);
            if seq.len() >= 2 {
                let (a, b) = (rng.below(seq.len()), rng.below(seq.len()));
                seq.swap(a, b);
            }
        }
        // replace an identifier
        4 | 5 => {
            let mut found = Vec::new();
            leaves(
                toks,
                &mut Vec::new(),
                &|t| matches!(t, TokenTree::Ident(_)),
                &mut found,
            );
            if !found.is_empty() {
                let (path, i) = rng.pick(&found).clone();
                let with = to_toks(tokens(rng.word(IDENTS)));
                let seq = sequence_mut(toks, &path);
                seq.splice(i..i + 1, with);
            }
        }
        // replace a literal
        6 => {
            let mut found = Vec::new();
            leaves(
                toks,
                &mut Vec::new(),
                &|t| matches!(t, TokenTree::Literal(_)),
                &mut found,
            );
            if !found.is_empty() {
                let (path, i) = rng.pick(&found).clone();
                let text = if rng.chance(80) {
                    rng.pick(LITERALS).to_string()
                } else {
                    rng.pick(IDENTS).to_string()
                };
                let seq = sequence_mut(toks, &path);
                seq.splice(i..i + 1, to_toks(tokens(&text)));
            }
        }
        // replace an operator or punctuation
        7 | 8 => {
            let mut found = Vec::new();
            leaves(
                toks,
                &mut Vec::new(),
                &|t| matches!(t, TokenTree::Punct(_)),
                &mut found,
            );
            if !found.is_empty() {
                let (path, i) = rng.pick(&found).clone();
                let with = to_toks(tokens(rng.word(PUNCTS)));
                let seq = sequence_mut(toks, &path);
                seq.splice(i..i + 1, with);
            }
        }
        // insert random tokens
        9 | 10 => {
            let fragment = random_fragment(rng);
            let seq = random_sequence(rng, toks);
            let at = rng.below(seq.len() + 1);
            seq.splice(at..at, fragment);
        }
        // splice a piece of another corpus function, inserted or replacing a piece
        11 => {
            if donors.is_empty() {
                return;
            }
            let mut donor = rng.pick(donors).clone();
            let piece: Vec<Tok> = {
                let seq = random_sequence(rng, &mut donor);
                if seq.is_empty() {
                    return;
                }
                let at = rng.below(seq.len());
                let n = rng.range(1, 6).min(seq.len() - at);
                seq[at..at + n].to_vec()
            };
            let seq = random_sequence(rng, toks);
            let at = rng.below(seq.len() + 1);
            let n = if rng.chance(50) {
                rng.below(4).min(seq.len() - at)
            } else {
                0
            };
            seq.splice(at..at + n, piece);
        }
        // change a type in the signature
        12 | 13 => {
            let ranges = type_ranges(toks);
            if ranges.is_empty() {
                return;
            }
            let (path, start, end) = rng.pick(&ranges).clone();
            let text = if rng.chance(60) {
                rng.pick(TYPES).to_string()
            } else {
                Gen::new(rng, 4).ty(2)
            };
            let seq = sequence_mut(toks, &path);
            if start <= end && end <= seq.len() {
                seq.splice(start..end, to_toks(tokens(&text)));
            }
        }
        // change a group's delimiter, or unwrap it
        14 => {
            let mut paths = Vec::new();
            sequence_paths(toks, &mut Vec::new(), &mut paths);
            paths.retain(|p| !p.is_empty());
            if paths.is_empty() {
                return;
            }
            let path = rng.pick(&paths).clone();
            let (last, parent) = path.split_last().expect("non-empty");
            let unwrap = rng.chance(40);
            let delimiter = random_delimiter(rng);
            let seq = sequence_mut(toks, parent);
            if let Tok::Group(d, inner) = &mut seq[*last] {
                if unwrap {
                    let inner = std::mem::take(inner);
                    seq.splice(*last..*last + 1, inner);
                } else {
                    *d = delimiter;
                }
            }
        }
        // wrap a run of token trees in a group (invisible groups included)
        _ => {
            let delimiter = random_delimiter(rng);
            let seq = random_sequence(rng, toks);
            if seq.is_empty() {
                return;
            }
            let at = rng.below(seq.len());
            let n = rng.range(1, 4).min(seq.len() - at);
            let run: Vec<Tok> = seq.drain(at..at + n).collect();
            seq.insert(at, Tok::Group(delimiter, run));
        }
    }
}

// -----------------------------------------------------------------------------------------
// A grammar of functions much wider than the supported subset
// -----------------------------------------------------------------------------------------

struct Gen<'r> {
    rng: &'r mut Rng,
    vars: Vec<String>,
    budget: i32,
}

const VAR_NAMES: &[&str] = &[
    "x",
    "y",
    "z",
    "a",
    "b",
    "n",
    "k",
    "v",
    "w",
    "s",
    "t",
    "x1",
    "x2",
    "r#type",
    "r#in",
    "d_x",
    "x_saved",
    "shift",
    "loop0",
    "branch0",
    "call0",
    "range0",
    "_x",
    "X",
    "output",
    "d_output",
    "_marker",
    "acc",
    "self_",
    "v0",
    "x_len",
    "output_len",
    "é",
];

const METHODS: &[&str] = &[
    "sin",
    "cos",
    "tan",
    "exp",
    "ln",
    "sqrt",
    "powi",
    "powf",
    "abs",
    "max",
    "min",
    "clamp",
    "atan2",
    "hypot",
    "mul_add",
    "recip",
    "signum",
    "floor",
    "is_nan",
    "to_degrees",
    "log",
    "len",
    "clone",
    "to_vec",
    "iter",
    "into_iter",
    "iter_mut",
    "map",
    "sum",
    "product",
    "fold",
    "zip",
    "enumerate",
    "rev",
    "step_by",
    "copied",
    "cloned",
    "filter",
    "take",
    "skip",
    "collect",
    "push",
    "swap",
    "unwrap",
    "into",
    "as_ref",
    "foo",
    "sin_cos",
    "exp_m1",
    "cbrt",
    "is_finite",
    "round",
    "fract",
    "get",
    "first",
    "last",
    "pop",
    "insert",
    "extend",
];

const CALLEES: &[&str] = &[
    "helper",
    "f",
    "g",
    "sin",
    "f64::sin",
    "f64::max",
    "f32::powi",
    "Float::powi",
    "T::from",
    "T::one",
    "T::zero",
    "T::sqrt",
    "Vec::new",
    "Vec::with_capacity",
    "inner::gauss",
    "Self::m",
    "<T as Float>::sin",
    "<f64>::sin",
    "num_traits::Float::sqrt",
    "float::Float::exp",
    "crate::f",
    "super::g",
    "std::mem::swap",
    "drop",
    "Some",
    "Box::new",
    "String::from",
    "f64::from",
    "Vec::<f64>::new",
    "cube::<f64>",
    "f64::mul_add",
    "f64::clamp",
    "T::atan2",
    "Float::hypot",
    "r#type",
    "f64::consts::PI",
    "x",
    "v",
];

impl<'r> Gen<'r> {
    fn new(rng: &'r mut Rng, budget: i32) -> Self {
        Gen {
            rng,
            vars: Vec::new(),
            budget,
        }
    }

    fn var(&mut self) -> String {
        if !self.vars.is_empty() && self.rng.chance(80) {
            let i = self.rng.below(self.vars.len());
            self.vars[i].clone()
        } else {
            self.rng.pick(VAR_NAMES).to_string()
        }
    }

    fn label(&mut self) -> &'static str {
        self.rng.word(&["'a", "'outer", "'inner", "'static"])
    }

    fn literal(&mut self) -> String {
        let lit = *self.rng.pick(&[
            "0.0",
            "1.0",
            "2.0",
            "0.5",
            "1e-3",
            "3",
            "0",
            "1",
            "2usize",
            "1.5f32",
            "2.0_f64",
            "1e308",
            "\"s\"",
            "'c'",
            "true",
            "false",
            "b'a'",
            "u64::MAX",
            "0x10",
            "1_000.0",
            "f64::NAN",
            "f64::consts::PI",
            "std::f64::consts::E",
            "T::EPSILON",
            "PI",
            "Self::C",
            "N",
            "C",
            "18446744073709551616",
            "1e-320",
            "f64::INFINITY",
            "i32::MIN",
        ]);
        lit.to_string()
    }

    fn atom(&mut self) -> String {
        match self.rng.below(10) {
            0..=5 => self.var(),
            6..=8 => self.literal(),
            _ => self
                .rng
                .pick(&["undefined", "()", "_", "self", "Self", "x.0", "[]"])
                .to_string(),
        }
    }

    fn args(&mut self, depth: u32, max: usize) -> String {
        let n = self.rng.range(0, max);
        (0..n)
            .map(|_| self.expr(depth))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn ty(&mut self, depth: u32) -> String {
        if depth == 0 || self.rng.chance(60) {
            return self.rng.pick(TYPES).to_string();
        }
        let inner = self.ty(depth - 1);
        match self.rng.below(8) {
            0 => format!("&{inner}"),
            1 => format!("&mut {inner}"),
            2 => format!("Vec<{inner}>"),
            3 => format!("[{inner}; 2]"),
            4 => format!("({inner}, {})", self.ty(depth - 1)),
            5 => format!("Option<{inner}>"),
            6 => format!("&[{inner}]"),
            _ => format!("Box<dyn Fn({inner}) -> {inner}>"),
        }
    }

    fn pattern(&mut self, depth: u32) -> String {
        let name = self.var();
        if depth == 0 || self.rng.chance(50) {
            return match self.rng.below(12) {
                0..=4 => name,
                5 | 6 => format!("mut {name}"),
                7 => "_".into(),
                8 => format!("ref {name}"),
                9 => format!("ref mut {name}"),
                10 => self.literal(),
                _ => self
                    .rng
                    .pick(&[
                        "..",
                        "None",
                        "Mode::Square",
                        "E::A",
                        "N",
                        "-1",
                        "1..=5",
                        "..=5",
                        "(0 | 1)",
                    ])
                    .to_string(),
            };
        }
        let (p, q) = (self.pattern(depth - 1), self.pattern(depth - 1));
        match self.rng.below(9) {
            0 | 1 => format!("({p}, {q})"),
            2 => format!("({p},)"),
            3 => format!("&{p}"),
            4 => format!("[{p}, .., {q}]"),
            5 => format!("Some({p})"),
            6 => format!("S {{ a: {p}, b, .. }}"),
            7 => format!("{name} @ {q}"),
            _ => format!("({p} | {q})"),
        }
    }

    fn bind(&mut self, pattern: &str) {
        // approximate: a pattern that is a name brings the name into scope
        let name = pattern.trim_start_matches("mut ").trim();
        if !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '#')
        {
            self.vars.push(name.to_string());
        }
    }

    fn block(&mut self, depth: u32, tail: bool) -> String {
        let scope = self.vars.len();
        let mut s = String::from("{ ");
        let n = self.rng.range(0, if depth == 0 { 1 } else { 4 });
        for _ in 0..n {
            s += &self.stmt(depth);
            s.push(' ');
        }
        if tail && self.rng.chance(85) {
            s += &self.expr(depth);
        }
        s += " }";
        self.vars.truncate(scope);
        s
    }

    fn loop_source(&mut self, depth: u32) -> String {
        let x = self.var();
        let n = self.var();
        match self.rng.below(26) {
            0 => format!("0..{n}"),
            1 => format!("0..{x}.len()"),
            2 => format!("{x}..={n}"),
            3 => format!("(0..{n}).rev()"),
            4 => format!("(0..{n}).step_by(2)"),
            5 => format!("(0..{n}).rev().step_by({})", self.atom()),
            6 => x,
            7 => format!("{x}.iter()"),
            8 => format!("&{x}"),
            9 => format!("{x}.iter().rev()"),
            10 => format!("{x}.iter().enumerate()"),
            11 => format!("{x}.iter().zip({n})"),
            12 => format!("{x}.iter().copied()"),
            13 => format!("{x}.iter_mut()"),
            14 => format!("{x}.into_iter()"),
            15 => format!("{x}.iter().filter(|v| true)"),
            16 => format!("..{n}"),
            17 => "0..".into(),
            18 => format!("{x}.iter().zip({n}.iter()).enumerate()"),
            19 => format!("{x}.iter().enumerate().rev()"),
            24 => format!("{x}.iter().rev().enumerate()"),
            20 => format!("(0..{n}).map(|i| i)"),
            21 => format!(
                "{x}.iter().enumerate().filter(|(i, v)| {})",
                self.cond(depth)
            ),
            22 => format!("(0..{n}).filter(|&i| i != {x})"),
            23 => format!("{x}.iter().filter({n}).rev()"),
            _ => self.cond(depth),
        }
    }

    fn for_pattern(&mut self) -> String {
        let pattern = self
            .rng
            .pick(&[
                "i",
                "_",
                "v",
                "&v",
                "(i, v)",
                "(a, b)",
                "(i, (a, b))",
                "mut v",
                "[a, b]",
                "ref v",
                "(i, &v)",
                "&(a, b)",
                "S { a }",
                "(i, v, w)",
                "((a, b), c)",
                "r#type",
            ])
            .to_string();
        for name in ["i", "v", "a", "b", "c", "w", "r#type"] {
            if pattern.contains(name) {
                self.vars.push(name.to_string());
            }
        }
        pattern
    }

    fn stmt(&mut self, depth: u32) -> String {
        self.budget -= 1;
        match self.rng.below(20) {
            0..=5 => {
                let pattern = self.pattern(1);
                let ty = if self.rng.chance(20) {
                    format!(": {}", self.ty(1))
                } else {
                    String::new()
                };
                let init = if self.rng.chance(90) {
                    format!(" = {}", self.expr(depth))
                } else {
                    String::new()
                };
                let diverge = if !init.is_empty() && self.rng.chance(5) {
                    format!(" else {{ return {}; }}", self.atom())
                } else {
                    String::new()
                };
                self.bind(&pattern);
                format!("let {pattern}{ty}{init}{diverge};")
            }
            6 if self.rng.chance(50) => {
                // a closure bound by `let`, called later through `var()`
                let name = self.rng.pick(VAR_NAMES).to_string();
                let scope = self.vars.len();
                let params = self
                    .rng
                    .pick(&["v", "v: f64", "a, b", "i: usize", "a, b: f64", ""]);
                self.vars.extend(["v", "a", "b", "i"].map(String::from));
                let body = if self.rng.chance(30) {
                    self.block(depth.saturating_sub(1), true)
                } else {
                    self.expr(depth.saturating_sub(1))
                };
                self.vars.truncate(scope);
                let prefix = self.rng.pick(&["", "", "move "]);
                self.vars.push(name.clone());
                format!("let {name} = {prefix}|{params}| {body};")
            }
            6..=11 => format!("{};", self.expr(depth)),
            12..=14 => match self.rng.below(4) {
                0 => {
                    let c = self.cond(depth.saturating_sub(1));
                    let b = self.block(depth.saturating_sub(1), false);
                    format!("if {c} {b}")
                }
                1 => {
                    let label = if self.rng.chance(15) {
                        format!("{}: ", self.label())
                    } else {
                        String::new()
                    };
                    let source = self.loop_source(depth.saturating_sub(1));
                    let scope = self.vars.len();
                    let pattern = self.for_pattern();
                    let body = self.block(depth.saturating_sub(1), false);
                    self.vars.truncate(scope);
                    format!("{label}for {pattern} in {source} {body}")
                }
                2 => {
                    let c = self.cond(depth.saturating_sub(1));
                    let b = self.block(depth.saturating_sub(1), false);
                    format!("while {c} {b}")
                }
                _ => format!("loop {}", self.block(depth.saturating_sub(1), false)),
            },
            15 => self
                .rng
                .pick(&[
                    "fn inner(x: f64) -> f64 { x * 2.0 }",
                    "struct S { a: f64 }",
                    "const C: f64 = 1.0;",
                    "static mut G: f64 = 0.0;",
                    "use std::f64::consts::PI;",
                    "macro_rules! m { ($e:expr) => { $e } }",
                    "impl S { fn m(&self) -> f64 { self.a } }",
                    "enum E { A, B(f64) }",
                    "mod m {}",
                    "type A = f64;",
                    "trait Tr { fn t(&self); }",
                    "#[differentiate] fn nested(x: f64) -> f64 { x }",
                    "extern \"C\" { fn c(x: f64) -> f64; }",
                    "union U { a: f64 }",
                ])
                .to_string(),
            16 => {
                let e = self.expr(depth.saturating_sub(1));
                match self.rng.below(12) {
                    0 => format!("println!(\"{{}}\", {e});"),
                    1 => format!("m!({e});"),
                    2 => format!("assert!({e});"),
                    3 => format!("vec![{e}];"),
                    4 => format!(
                        "assert_eq!({e}, {}, \"{{}} {{{}:?}} {{:w$}}\", {}, w = {});",
                        self.expr(depth.saturating_sub(1)),
                        self.var(),
                        self.atom(),
                        self.atom()
                    ),
                    5 => format!("debug_assert_ne!({e}, {});", self.atom()),
                    6 => format!(
                        "std::assert!({e}, \"{{{{{}}}}} {{{}}}\");",
                        self.var(),
                        self.var()
                    ),
                    7 => format!("assert!({e}, {});", self.atom()),
                    8 => format!("panic!(\"{{}}\", {e});"),
                    9 => "unreachable!();".into(),
                    10 => format!("todo!(\"{{{}}}\");", self.var()),
                    _ => format!("unknown! {{ {e} }}"),
                }
            }
            17 => ";".into(),
            18 => format!(
                "#[allow(unused)] let {} = {};",
                self.var(),
                self.expr(depth)
            ),
            _ => {
                let place = self.place();
                let op = self
                    .rng
                    .pick(&["=", "+=", "-=", "*=", "/=", "%=", "^=", "<<=", "|="]);
                format!("{place} {op} {};", self.expr(depth))
            }
        }
    }

    fn place(&mut self) -> String {
        let v = self.var();
        match self.rng.below(10) {
            0..=4 => v,
            5 => format!("{v}[{}]", self.atom()),
            6 => format!("{v}.0"),
            7 => format!("*{v}"),
            8 => format!("({v}, {})", self.var()),
            _ => self
                .rng
                .pick(&["_", "(_, x)", "[a, b]", "S { a }", "C", "f()", "x[1..2]"])
                .to_string(),
        }
    }

    fn expr(&mut self, depth: u32) -> String {
        self.budget -= 1;
        if depth == 0 || self.budget <= 0 || self.rng.chance(25) {
            return self.atom();
        }
        let d = depth - 1;
        match self.rng.below(40) {
            0..=5 => {
                let op = self.rng.pick(&[
                    "+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>", "&&", "||", "==", "!=",
                    "<", "<=", ">", ">=", "+", "*", "-",
                ]);
                format!("{} {op} {}", self.operand(d), self.operand(d))
            }
            6 => format!("{}{}", self.rng.pick(&["-", "!", "*", "!!"]), self.expr(d)),
            7 => format!("({})", self.expr(d)),
            8 => match self.rng.below(3) {
                0 => format!("({}, {})", self.expr(d), self.expr(d)),
                1 => format!("({},)", self.expr(d)),
                _ => "()".into(),
            },
            9..=12 => {
                let receiver = self.operand(d);
                let method = self.rng.pick(METHODS).to_string();
                let turbofish = if self.rng.chance(10) {
                    self.rng
                        .pick(&["::<f64>", "::<T>", "::<Vec<_>>", "::<>"])
                        .to_string()
                } else {
                    String::new()
                };
                let args = self.args(d, 3);
                format!("{receiver}.{method}{turbofish}({args})")
            }
            13 | 14 => {
                let x = self.var();
                let y = self.var();
                let e = self.expr(d);
                match self.rng.below(14) {
                    0 => format!("{x}.iter().map(|v| {e}).sum::<f64>()"),
                    1 => format!("(0..{y}).map(|i| {e}).sum()"),
                    2 => format!("{x}.iter().zip({y}).map(|(a, b)| {e}).sum::<T>()"),
                    3 => format!("{x}.iter().fold({e}, |acc, v| {})", self.expr(d)),
                    4 => format!("{x}.iter().filter(|v| **v > 0.0).sum::<f64>()"),
                    5 => format!("{x}.iter().map(|| {e}).sum::<f64>()"),
                    6 => format!("{x}.iter().map({y}).sum::<f64>()"),
                    7 => format!("{x}.iter().fold(0.0, {y})"),
                    8 => format!("{x}.iter().fold(0.0, |acc| {e})"),
                    9 => format!("{x}.iter().enumerate().map(|(i, v)| {e}).sum::<f64>()"),
                    10 => format!("{x}.iter().rev().sum::<f64>()"),
                    11 => format!("{x}.iter().zip({y}).sum::<f64>()"),
                    12 => format!("{x}.iter().map(|v| {{ {y} = {e}; v }}).product::<f64>()"),
                    _ => format!("{x}.iter().fold({e}, |(a, b), v| a)"),
                }
            }
            15..=17 => {
                let callee = self.rng.pick(CALLEES).to_string();
                let args = self.args(d, 3);
                match self.rng.below(10) {
                    0 => format!("({})({args})", self.expr(d)),
                    1 => format!("T::from({args}).unwrap()"),
                    2 => format!("(|v| v)({args})"),
                    // a variable called: a closure bound by `let`, or not
                    3 | 4 => format!("{}({args})", self.var()),
                    _ => format!("{callee}({args})"),
                }
            }
            18 => format!(
                "{}.{}",
                self.operand(d),
                self.rng.pick(&["0", "1", "field", "len", "1.0"])
            ),
            19 | 20 => {
                let base = self.operand(d);
                match self.rng.below(5) {
                    0 => format!("{base}[{}..{}]", self.atom(), self.atom()),
                    1 => format!("{base}[..]"),
                    _ => format!("{base}[{}]", self.expr(d)),
                }
            }
            21 => {
                let (a, b) = (self.atom(), self.atom());
                self.rng
                    .pick(&[
                        format!("{a}..{b}"),
                        format!("{a}..={b}"),
                        format!("..{b}"),
                        format!("{a}.."),
                        "..".to_string(),
                    ])
                    .clone()
            }
            22 => format!(
                "{} as {}",
                self.operand(d),
                self.rng
                    .pick(&["f64", "f32", "i32", "usize", "T", "u8", "bool", "_", "Vec<f64>"])
            ),
            23 => format!(
                "{}{}",
                self.rng
                    .pick(&["&", "&mut ", "&&", "&raw const ", "&raw mut "]),
                self.expr(d)
            ),
            24 => {
                let scope = self.vars.len();
                let params = match self.rng.below(5) {
                    0 => "||".to_string(),
                    1 => "|v|".to_string(),
                    2 => "|a, b: f64|".to_string(),
                    3 => "|(a, b)|".to_string(),
                    _ => "|&v|".to_string(),
                };
                self.vars.extend(["v", "a", "b"].map(String::from));
                let prefix = self.rng.pick(&["", "", "move ", "async ", "async move "]);
                let body = if self.rng.chance(30) {
                    format!("-> f64 {}", self.block(d, true))
                } else {
                    self.expr(d)
                };
                self.vars.truncate(scope);
                format!("{prefix}{params} {body}")
            }
            25 => {
                let b = self.block(d, true);
                let prefix = self.rng.pick(&[
                    "",
                    "",
                    "unsafe ",
                    "async ",
                    "async move ",
                    "const ",
                    "'a: ",
                    "try ",
                ]);
                format!("{prefix}{b}")
            }
            26..=28 => {
                let c = match self.rng.below(6) {
                    0 => format!("let {} = {}", self.pattern(1), self.cond(d)),
                    1 => format!("let Some(v) = {} && {}", self.operand(d), self.cond(d)),
                    _ => self.cond(d),
                };
                let then = self.block(d, true);
                match self.rng.below(4) {
                    0 => format!("if {c} {then}"),
                    1 => format!(
                        "if {c} {then} else if {} {} else {}",
                        self.cond(d),
                        self.block(d, true),
                        self.block(d, true)
                    ),
                    _ => format!("if {c} {then} else {}", self.block(d, true)),
                }
            }
            29 | 30 => {
                let scrutinee = self.cond(d);
                let n = self.rng.range(0, 4);
                let mut arms = String::new();
                for _ in 0..n {
                    let scope = self.vars.len();
                    let mut pattern = self.pattern(1);
                    if self.rng.chance(15) {
                        pattern = format!("{pattern} | {}", self.pattern(1));
                    }
                    self.bind(&pattern);
                    let guard = if self.rng.chance(15) {
                        format!(" if {}", self.expr(d))
                    } else {
                        String::new()
                    };
                    let body = if self.rng.chance(30) {
                        self.block(d, true)
                    } else {
                        format!("{},", self.expr(d))
                    };
                    self.vars.truncate(scope);
                    arms += &format!("{pattern}{guard} => {body} ");
                }
                format!("match {scrutinee} {{ {arms} }}")
            }
            31 => {
                let label = if self.rng.chance(30) {
                    format!("{}: ", self.label())
                } else {
                    String::new()
                };
                match self.rng.below(4) {
                    0 => {
                        let source = self.loop_source(d);
                        let scope = self.vars.len();
                        let pattern = self.for_pattern();
                        let body = self.block(d, false);
                        self.vars.truncate(scope);
                        format!("{label}for {pattern} in {source} {body}")
                    }
                    1 => format!("{label}while {} {}", self.cond(d), self.block(d, false)),
                    2 => format!(
                        "{label}while let {} = {} {}",
                        self.pattern(1),
                        self.cond(d),
                        self.block(d, false)
                    ),
                    _ => format!("{label}loop {}", self.block(d, false)),
                }
            }
            32 => match self.rng.below(9) {
                0 => "break".into(),
                1 => format!("break {}", self.expr(d)),
                2 => format!("break {} {}", self.label(), self.expr(d)),
                3 => "continue".into(),
                4 => format!("continue {}", self.label()),
                5 => "return".into(),
                6 => format!("yield {}", self.expr(d)),
                _ => format!("return {}", self.expr(d)),
            },
            33 => format!(
                "{}{}",
                self.operand(d),
                self.rng.pick(&["?", ".await", ".await?", "()"])
            ),
            34 => match self.rng.below(4) {
                0 => format!("S {{ a: {}, b }}", self.expr(d)),
                1 => format!("S {{ a: {}, ..Default::default() }}", self.expr(d)),
                2 => format!("Point {{ x: {}, y: {} }}", self.expr(d), self.expr(d)),
                _ => "S {}".into(),
            },
            35 => match self.rng.below(4) {
                0 => format!("[{}, {}]", self.expr(d), self.expr(d)),
                1 => format!("[{}; 3]", self.expr(d)),
                2 => format!("[{}; {}]", self.expr(d), self.var()),
                _ => "[]".into(),
            },
            36 | 37 => {
                let e = self.expr(d);
                match self.rng.below(15) {
                    0 => format!("vec![{e}; {}]", self.atom()),
                    1 => format!("vec![{e}, {}]", self.expr(d)),
                    2 => "vec![]".into(),
                    3 => format!("vec!({e})"),
                    4 => format!("println!(\"{{}}\", {e})"),
                    5 => format!("format!(\"{{{}}}\", {e})", "x"),
                    6 => format!("assert!({e})"),
                    7 => format!("unknown!({e})"),
                    8 => format!("matches!({e}, {})", self.pattern(1)),
                    9 => format!("dbg!({e})"),
                    10 => format!("std::vec![{e}]"),
                    11 => "unreachable!()".into(),
                    12 => format!("panic!(\"{{}}\", {e})"),
                    13 => "core::unimplemented!()".into(),
                    _ => format!("vec![{e}; ]"),
                }
            }
            38 => {
                let place = self.place();
                let op = self
                    .rng
                    .pick(&["=", "+=", "-=", "*=", "/=", "%=", "&=", ">>="]);
                format!("{place} {op} {}", self.expr(d))
            }
            _ => self
                .rng
                .pick(&[
                    "Vec::<f64>::new()",
                    "T::from(1.5).unwrap()",
                    "<T as Float>::one()",
                    "x.iter().sum::<f64>()",
                    "_",
                    "f64::consts::PI",
                    "x.len()",
                    "(x)()",
                    "x.0.1",
                ])
                .to_string(),
        }
    }

    /// An expression that can be the operand of an operator, a receiver or a base: in
    /// parentheses where it would not parse there (block-like, a cast, a range, a closure).
    fn operand(&mut self, depth: u32) -> String {
        let e = self.expr(depth);
        let block_like = [
            "if ", "match ", "loop ", "while ", "for ", "{", "unsafe ", "async", "const ", "try ",
            "'", "|", "move ", "return", "break", "continue", "yield", "..", "-", "!", "*", "&",
        ];
        if block_like.iter().any(|p| e.starts_with(p))
            || e.contains(" as ")
            || e.contains("..")
            || e.contains(" = ")
        {
            format!("({e})")
        } else {
            e
        }
    }

    /// An expression in the condition of `if`/`while` or a scrutinee: no struct literal.
    fn cond(&mut self, depth: u32) -> String {
        let e = self.operand(depth);
        if e.contains('{') && !e.starts_with('(') {
            format!("({e})")
        } else {
            e
        }
    }

    /// A whole function and the names of its parameters.
    fn function(&mut self) -> (String, Vec<String>) {
        let mut s = String::new();
        for _ in 0..self.rng.below(3) {
            if self.rng.chance(30) {
                s += self.rng.word(&[
                    "#[inline] ",
                    "#[allow(unused)] ",
                    "/// doc\n",
                    "#[doc = \"d\"] ",
                    "#[differentiate] ",
                    "#[differentiate(wrt(x))] ",
                    "#[must_use] ",
                    "#[cfg(all())] ",
                    "#[rustfmt::skip] ",
                ]);
            }
        }
        s += self.rng.word(&[
            "",
            "",
            "",
            "pub ",
            "pub(crate) ",
            "pub(super) ",
            "pub(in crate::m) ",
        ]);
        if self.rng.chance(2) {
            s += "const ";
        }
        if self.rng.chance(2) {
            s += "async ";
        }
        if self.rng.chance(2) {
            s += "unsafe ";
        }
        if self.rng.chance(2) {
            s += self.rng.word(&["extern \"C\" ", "extern "]);
        }
        s += "fn ";
        s += self.rng.word(&[
            "f",
            "f",
            "g",
            "energy",
            "loss",
            "f2",
            "_f",
            "__f",
            "F",
            "fooBar",
            "r#match",
            "r#type",
            "r#loop",
            "snake_case_name",
            "x",
            "grad",
            "f_grad",
            "f_pullback",
            "__autodiff_pullback_f",
            "Pullback",
            "a_",
            "é",
            "_1",
        ]);
        let generics = self.rng.pick(&[
            "",
            "",
            "",
            "",
            "<T: Float>",
            "<T: Float>",
            "<T>",
            "<T: Float + Copy>",
            "<'a, T: Float>",
            "<T: Float, const N: usize>",
            "<const N: usize>",
            "<T, U>",
            "<T = f64>",
            "<F: Fn(f64) -> f64>",
            "<'a>",
            "<T: num_traits::Float>",
            "<T: ?Sized>",
            "<T: Float + 'static>",
        ]);
        s += generics;
        let mut names = Vec::new();
        let mut params = Vec::new();
        for i in 0..self.rng.range(0, 4) {
            if i == 0 && self.rng.chance(2) {
                params.push(
                    self.rng
                        .pick(&[
                            "self",
                            "&self",
                            "&mut self",
                            "mut self",
                            "self: Box<Self>",
                            "&'a self",
                        ])
                        .to_string(),
                );
                continue;
            }
            let pattern = if self.rng.chance(85) {
                let name = self.rng.pick(VAR_NAMES).to_string();
                names.push(name.clone());
                if self.rng.chance(10) {
                    format!("mut {name}")
                } else {
                    name
                }
            } else {
                self.rng
                    .pick(&[
                        "_",
                        "(a, b)",
                        "ref x",
                        "ref mut x",
                        "x @ _",
                        "&x",
                        "[a, b]",
                        "S { a, b }",
                    ])
                    .to_string()
            };
            let ty = if self.rng.chance(75) {
                self.rng
                    .pick(&[
                        "f64", "f64", "f32", "T", "&[f64]", "&[T]", "i32", "usize", "Vec<f64>",
                        "[f64; 3]",
                    ])
                    .to_string()
            } else {
                self.ty(2)
            };
            params.push(format!("{pattern}: {ty}"));
        }
        if self.rng.chance(2) {
            params.push(self.rng.pick(&["...", "args: ..."]).to_string());
        }
        s += &format!("({})", params.join(", "));
        if self.rng.chance(95) {
            let ret = if self.rng.chance(85) {
                self.rng
                    .pick(&[
                        "f64",
                        "f64",
                        "f32",
                        "T",
                        "(f64, f64)",
                        "Vec<f64>",
                        "[f64; 3]",
                        "Vec<T>",
                        "[T; N]",
                        "(T,)",
                    ])
                    .to_string()
            } else {
                self.ty(2)
            };
            s += &format!(" -> {ret}");
        }
        s += self.rng.word(&[
            "",
            "",
            "",
            "",
            " where T: Float",
            " where T: Float + Copy, U: Clone",
            " where for<'b> T: Fn(&'b f64)",
            " where",
        ]);
        self.vars = names.clone();
        let depth = self.rng.range(1, 4) as u32;
        s.push(' ');
        s += &self.block(depth, true);
        (s, names)
    }
}

// -----------------------------------------------------------------------------------------
// Functions mostly inside the supported subset, to reach the analysis and code generation
// -----------------------------------------------------------------------------------------

/// Generates well-typed-looking functions from the supported subset (scalars, integers,
/// slices, local vectors, `if`/`match`, loops, iterator reductions, calls), with now and
/// then one construct from the wide grammar in place of an expression.
struct SubsetGen<'r> {
    rng: &'r mut Rng,
    /// `f64`, `f32` or `T`.
    float: &'static str,
    floats: Vec<String>,
    ints: Vec<String>,
    bools: Vec<String>,
    /// Read-only arrays (parameters).
    arrays: Vec<String>,
    /// Local `Vec`s that can be written.
    vecs: Vec<String>,
    fresh: usize,
    budget: i32,
    loop_depth: usize,
    in_loop_kind: Vec<&'static str>,
}

impl<'r> SubsetGen<'r> {
    fn new(rng: &'r mut Rng) -> Self {
        let float = *rng.pick(&["f64", "f64", "f32", "T"]);
        let budget = rng.range(10, 70) as i32;
        SubsetGen {
            rng,
            float,
            floats: Vec::new(),
            ints: Vec::new(),
            bools: Vec::new(),
            arrays: Vec::new(),
            vecs: Vec::new(),
            fresh: 0,
            budget,
            loop_depth: 0,
            in_loop_kind: Vec::new(),
        }
    }

    fn name(&mut self, base: &str) -> String {
        self.fresh += 1;
        if self.rng.chance(3) {
            // names that collide with generated ones, or raw identifiers
            return self
                .rng
                .pick(&[
                    "d_x",
                    "x_saved",
                    "x_carry",
                    "carry",
                    "shift",
                    "loop0",
                    "branch0",
                    "call0",
                    "range0",
                    "d_output",
                    "_marker",
                    "v0",
                    "output_len",
                    "x_len",
                    "r#in",
                    "r#type",
                ])
                .to_string();
        }
        format!("{base}{}", self.fresh)
    }

    fn lit(&mut self) -> String {
        let value = *self
            .rng
            .pick(&["0.5", "2.0", "1.0", "0.0", "3.5", "1e-3", "100.0", "0.25"]);
        match self.float {
            "T" => match self.rng.below(4) {
                0 => "T::one()".into(),
                1 => "T::zero()".into(),
                2 => "T::EPSILON".into(),
                _ => format!("T::from({value}).unwrap()"),
            },
            f => {
                if self.rng.chance(10) {
                    format!("{value}_{f}")
                } else if self.rng.chance(5) {
                    format!("{f}::consts::PI")
                } else {
                    value.into()
                }
            }
        }
    }

    fn int(&mut self) -> String {
        let mut options: Vec<String> = vec![self.rng.range(0, 4).to_string()];
        options.extend(self.ints.iter().cloned());
        options.extend(self.arrays.iter().map(|a| format!("{a}.len()")));
        options.extend(self.vecs.iter().map(|a| format!("{a}.len()")));
        let base = self.rng.pick(&options).clone();
        match self.rng.below(8) {
            0 => format!("{base} + 1"),
            1 => format!("{base} - 1"),
            2 => format!("{base} % 3"),
            3 => format!("{base} / 2"),
            _ => base,
        }
    }

    fn index_into(&mut self) -> Option<String> {
        let mut arrays: Vec<String> = self.arrays.clone();
        arrays.extend(self.vecs.iter().cloned());
        if arrays.is_empty() {
            return None;
        }
        let a = self.rng.pick(&arrays).clone();
        let i = self.int();
        Some(format!("{a}[{i}]"))
    }

    fn float_atom(&mut self) -> String {
        match self.rng.below(10) {
            0..=5 if !self.floats.is_empty() => self.rng.pick(&self.floats.clone()).clone(),
            6 | 7 => self.index_into().unwrap_or_else(|| self.lit()),
            8 if self.float == "f64" && !self.ints.is_empty() => {
                format!("{} as f64", self.rng.pick(&self.ints.clone()))
            }
            _ => self.lit(),
        }
    }

    fn cond(&mut self, depth: u32) -> String {
        match self.rng.below(8) {
            0 if !self.bools.is_empty() => self.rng.pick(&self.bools.clone()).clone(),
            1 => format!("{} > {}", self.int(), self.int()),
            2 => format!("{} == {}", self.int(), self.int()),
            3 => format!("{} && {}", self.cond(0), self.cond(0)),
            4 => format!("!({})", self.cond(0)),
            5 => format!("{}.is_nan()", self.float_atom()),
            _ => format!(
                "{} {} {}",
                self.float(depth.min(1)),
                self.rng.word(&["<", ">", "<=", ">=", "!="]),
                self.float(depth.min(1))
            ),
        }
    }

    fn float(&mut self, depth: u32) -> String {
        self.budget -= 1;
        if depth == 0 || self.budget <= 0 || self.rng.chance(30) {
            return self.float_atom();
        }
        let d = depth - 1;
        let f = self.float;
        match self.rng.below(24) {
            0..=5 => format!(
                "{} {} {}",
                self.float(d),
                self.rng.word(&["+", "-", "*", "/", "*", "+", "%"]),
                self.float(d)
            ),
            6 => format!("-{}", self.float_atom()),
            7 => format!("({})", self.float(d)),
            8..=10 => {
                let x = self.float_atom();
                let unary = *self.rng.pick(&[
                    "sin",
                    "cos",
                    "exp",
                    "ln",
                    "sqrt",
                    "abs",
                    "tanh",
                    "atan",
                    "exp_m1",
                    "ln_1p",
                    "cbrt",
                    "recip",
                    "floor",
                    "signum",
                    "to_radians",
                    "asinh",
                    "fract",
                ]);
                match self.rng.below(4) {
                    0 => format!("{f}::{unary}({x})"),
                    1 => format!("Float::{unary}({x})"),
                    _ => format!("{x}.{unary}()"),
                }
            }
            11 | 12 => {
                let (x, y) = (self.float_atom(), self.float(d));
                match self.rng.below(8) {
                    0 => format!("{x}.powi({})", self.rng.range(0, 4)),
                    1 => format!("{x}.powf({y})"),
                    2 => format!("{x}.max({y})"),
                    3 => format!("{x}.min({y})"),
                    4 => format!("{x}.hypot({y})"),
                    5 => format!("{x}.atan2({y})"),
                    6 => format!("{x}.mul_add({y}, {})", self.float_atom()),
                    _ => format!("{x}.clamp({}, {y})", self.lit()),
                }
            }
            13 => format!(
                "if {} {{ {} }} else {{ {} }}",
                self.cond(d),
                self.float(d),
                self.float(d)
            ),
            14 if self.rng.chance(40) => {
                let scrutinee = self.int();
                format!(
                    "match {scrutinee} {{ 0 => {}, k if {} => {}, k @ 1..=3 if k > 1 => {}, _ => {} }}",
                    self.float(d),
                    self.cond(d),
                    self.float(d),
                    self.float(d),
                    self.float(d)
                )
            }
            14 => {
                let scrutinee = self.int();
                format!(
                    "match {scrutinee} {{ 0 => {}, 1 | 2 => {}, n => {} * {} }}",
                    self.float(d),
                    self.float(d),
                    self.float(d),
                    if f == "f64" {
                        "n as f64".to_string()
                    } else {
                        self.lit()
                    }
                )
            }
            15 => {
                let t = self.name("t");
                let e = self.float(d);
                self.floats.push(t.clone());
                let r = format!("{{ let {t} = {e}; {t} * {} }}", self.float(d));
                self.floats.retain(|v| *v != t);
                r
            }
            16 | 17 if !self.arrays.is_empty() => {
                let a = self.rng.pick(&self.arrays.clone()).clone();
                let e = self.lit();
                match self.rng.below(7) {
                    0 => format!("{a}.iter().sum::<{f}>()"),
                    1 => format!("{a}.iter().map(|v| v * v).sum::<{f}>()"),
                    2 => format!("{a}.iter().fold({e}, |acc, v| acc + v.sin())"),
                    3 => format!("(0..{a}.len()).map(|i| {a}[i] * {e}).sum::<{f}>()"),
                    4 => format!("{a}.iter().product::<{f}>()"),
                    5 => format!("{a}.iter().zip({a}).map(|(p, q)| p * q).sum::<{f}>()"),
                    _ => format!("{a}.iter().copied().sum::<{f}>()"),
                }
            }
            18 => {
                let args = (0..self.rng.range(1, 3))
                    .map(|_| self.float(d))
                    .collect::<Vec<_>>()
                    .join(", ");
                let callee =
                    *self
                        .rng
                        .pick(&["helper", "inner::gauss", "cube::<f64>", "polar", "sq"]);
                format!("{callee}({args})")
            }
            19 => {
                // a value-yielding `loop`
                let c = self.name("c");
                format!(
                    "{{ let mut {c} = {}; loop {{ {c} = {c} * {}; if {c} > {} {{ break {c}; }} }} }}",
                    self.float_atom(),
                    self.lit(),
                    self.lit()
                )
            }
            20 if self.rng.chance(50) => {
                // one construct from the wide grammar
                let mut g = Gen::new(self.rng, 6);
                g.vars = self.floats.clone();
                g.operand(2)
            }
            _ => self.float_atom(),
        }
    }

    fn stmts(&mut self, depth: u32, n: usize) -> String {
        let (floats, ints, bools, vecs) = (
            self.floats.len(),
            self.ints.len(),
            self.bools.len(),
            self.vecs.len(),
        );
        let mut out = String::new();
        for _ in 0..n {
            out += &self.stmt(depth);
            out.push(' ');
        }
        self.floats.truncate(floats);
        self.ints.truncate(ints);
        self.bools.truncate(bools);
        self.vecs.truncate(vecs);
        out
    }

    fn stmt(&mut self, depth: u32) -> String {
        self.budget -= 1;
        let d = depth.saturating_sub(1);
        let inner = if depth == 0 || self.budget <= 0 {
            0
        } else {
            self.rng.range(1, 3)
        };
        match self.rng.below(26) {
            0..=3 => {
                let v = self.name("a");
                let e = self.float(2);
                let ty = if self.rng.chance(15) {
                    format!(": {}", self.float)
                } else {
                    String::new()
                };
                self.floats.push(v.clone());
                format!("let mut {v}{ty} = {e};")
            }
            4..=6 if !self.floats.is_empty() => {
                let v = self.rng.pick(&self.floats.clone()).clone();
                let op = *self.rng.pick(&["=", "+=", "-=", "*=", "/="]);
                format!("{v} {op} {};", self.float(2))
            }
            7 => {
                let k = self.name("k");
                let e = self.int();
                self.ints.push(k.clone());
                format!("let {k} = {e};")
            }
            8 => {
                let b = self.name("b");
                let e = self.cond(1);
                self.bools.push(b.clone());
                format!("let {b} = {e};")
            }
            9 | 10 => {
                let c = self.cond(1);
                let then = self.stmts(d, inner);
                if self.rng.chance(50) {
                    format!("if {c} {{ {then} }} else {{ {} }}", self.stmts(d, inner))
                } else {
                    format!("if {c} {{ {then} }}")
                }
            }
            11..=13 => {
                let i = self.name("i");
                let source = match self.rng.below(6) {
                    0 => format!("0..{}", self.int()),
                    1 => format!("(0..{}).rev()", self.int()),
                    2 => format!("(1..={}).step_by(2)", self.int()),
                    _ => format!("0..{}", self.int()),
                };
                self.ints.push(i.clone());
                self.loop_depth += 1;
                self.in_loop_kind.push("for");
                let body = self.stmts(d, inner.max(1));
                self.in_loop_kind.pop();
                self.loop_depth -= 1;
                self.ints.retain(|v| *v != i);
                format!("for {i} in {source} {{ {body} }}")
            }
            14 if !self.arrays.is_empty() => {
                let a = self.rng.pick(&self.arrays.clone()).clone();
                let v = self.name("v");
                let (pattern, source) = match self.rng.below(7) {
                    0 => (v.clone(), format!("{a}.iter()")),
                    1 => (format!("&{v}"), format!("{a}.iter().rev()")),
                    2 => (format!("(j, {v})"), format!("{a}.iter().enumerate()")),
                    3 => (format!("({v}, w)"), format!("{a}.iter().zip({a})")),
                    4 => (v.clone(), format!("{a}.iter_mut()")),
                    5 => (format!("(j, {v})"), format!("&mut {a}")),
                    _ => (
                        format!("(w, {v})"),
                        format!("{a}.iter().zip({a}.iter_mut())"),
                    ),
                };
                let writes = source.contains("mut");
                self.floats.push(v.clone());
                self.loop_depth += 1;
                self.in_loop_kind.push("for");
                let mut body = self.stmts(d, inner.max(1));
                if writes {
                    let e = self.float(d.min(2));
                    let op = self.rng.pick(&["=", "+=", "*="]);
                    body = format!("*{v} {op} {e}; {body}");
                }
                self.in_loop_kind.pop();
                self.loop_depth -= 1;
                self.floats.retain(|x| *x != v);
                format!("for {pattern} in {source} {{ {body} }}")
            }
            15 => {
                let n = self.name("count");
                self.loop_depth += 1;
                self.in_loop_kind.push("while");
                let body = self.stmts(d, inner);
                self.in_loop_kind.pop();
                self.loop_depth -= 1;
                let c = self.cond(0);
                format!("let mut {n} = 0; while {n} < 3 && {c} {{ {n} += 1; {body} }}")
            }
            16 => {
                self.loop_depth += 1;
                self.in_loop_kind.push("loop");
                let body = self.stmts(d, inner);
                self.in_loop_kind.pop();
                self.loop_depth -= 1;
                format!("loop {{ {body} if {} {{ break; }} }}", self.cond(0))
            }
            17 => {
                let w = self.name("w");
                let init = match self.rng.below(4) {
                    0 if !self.arrays.is_empty() => {
                        format!("{}.to_vec()", self.rng.pick(&self.arrays.clone()))
                    }
                    1 => "Vec::new()".into(),
                    2 => format!("vec![{}, {}]", self.float_atom(), self.float_atom()),
                    _ => format!("vec![{}; {}]", self.lit(), self.int()),
                };
                self.vecs.push(w.clone());
                format!("let mut {w} = {init};")
            }
            18 | 19 if !self.vecs.is_empty() => {
                let w = self.rng.pick(&self.vecs.clone()).clone();
                match self.rng.below(5) {
                    0 => format!("{w}.push({});", self.float(1)),
                    1 => format!("{w}.swap({}, {});", self.int(), self.int()),
                    2 => format!("{w}[{}] += {};", self.int(), self.float(1)),
                    _ => format!("{w}[{}] = {};", self.int(), self.float(1)),
                }
            }
            20 if self.loop_depth > 0 => {
                let jump = *self.rng.pick(&["continue", "break"]);
                format!("if {} {{ {jump}; }}", self.cond(0))
            }
            21 => format!("if {} {{ return {}; }}", self.cond(0), self.float(1)),
            22 => {
                let (p, q) = (self.name("p"), self.name("q"));
                let s = format!(
                    "let (mut {p}, mut {q}) = ({}, {});",
                    self.float(1),
                    self.float(1)
                );
                let swap = if self.rng.chance(50) {
                    format!(" ({p}, {q}) = ({q}, {p});")
                } else {
                    String::new()
                };
                self.floats.push(p);
                self.floats.push(q);
                s + &swap
            }
            23 => {
                let y = self.name("y");
                let s = format!(
                    "let {y}; if {} {{ {y} = {}; }} else {{ {y} = {}; }}",
                    self.cond(0),
                    self.float(1),
                    self.float(1)
                );
                self.floats.push(y);
                s
            }
            24 if self.rng.chance(30) => {
                // one statement from the wide grammar
                let mut g = Gen::new(self.rng, 8);
                g.vars = self.floats.clone();
                g.stmt(1)
            }
            _ => {
                let v = self.name("a");
                let e = self.float(1);
                self.floats.push(v.clone());
                format!("let {v} = {e};")
            }
        }
    }

    /// A whole function, and its parameters' names.
    fn function(&mut self) -> (String, Vec<String>) {
        let f = self.float;
        let mut params = Vec::new();
        let mut names = Vec::new();
        for _ in 0..self.rng.range(1, 4) {
            let name = self.name("x");
            let ty = match self.rng.below(10) {
                0..=3 => {
                    self.floats.push(name.clone());
                    f.to_string()
                }
                4 | 5 => {
                    self.arrays.push(name.clone());
                    self.rng
                        .pick(&[
                            format!("&[{f}]"),
                            format!("Vec<{f}>"),
                            format!("&[{f}; 3]"),
                            format!("&Vec<{f}>"),
                            format!("[{f}; 2]"),
                        ])
                        .clone()
                }
                6 | 7 => {
                    self.ints.push(name.clone());
                    self.rng.word(&["usize", "i32", "u8", "&usize"]).to_string()
                }
                8 => {
                    self.bools.push(name.clone());
                    "bool".into()
                }
                _ => {
                    self.floats.push(name.clone());
                    f.to_string()
                }
            };
            names.push(name.clone());
            params.push(format!("{name}: {ty}"));
        }
        let output = match self.rng.below(10) {
            0 => format!("({f}, {f})"),
            1 => format!("Vec<{f}>"),
            _ => f.to_string(),
        };
        let depth = self.rng.range(1, 3) as u32;
        let n = self.rng.range(0, 6);
        let body = self.stmts_keep(depth, n);
        let tail = match output.as_str() {
            o if o.starts_with('(') => format!("({}, {})", self.float(2), self.float(2)),
            o if o.starts_with("Vec") => {
                if let Some(w) = self.vecs.last().cloned() {
                    w
                } else {
                    format!("vec![{}, {}]", self.float(1), self.float(1))
                }
            }
            _ => self.float(3),
        };
        let generics = if f == "T" { "<T: Float>" } else { "" };
        let name = self
            .rng
            .word(&["f", "energy", "loss", "g2", "snake_case", "x"]);
        (
            format!(
                "fn {name}{generics}({}) -> {output} {{ {body} {tail} }}",
                params.join(", ")
            ),
            names,
        )
    }

    /// Statements whose bindings stay in scope for the tail.
    fn stmts_keep(&mut self, depth: u32, n: usize) -> String {
        let mut out = String::new();
        for _ in 0..n {
            out += &self.stmt(depth);
            out.push(' ');
        }
        out
    }
}

// -----------------------------------------------------------------------------------------
// Garbage attributes
// -----------------------------------------------------------------------------------------

fn random_attr(rng: &mut Rng, params: &[String]) -> String {
    let mut name = |rng: &mut Rng| -> String {
        if !params.is_empty() && rng.chance(60) {
            rng.pick(params).clone()
        } else {
            rng.pick(IDENTS).to_string()
        }
    };
    let one = |rng: &mut Rng, name: &mut dyn FnMut(&mut Rng) -> String| -> String {
        match rng.below(16) {
            0..=4 => {
                let n = rng.range(0, 4);
                let mut items: Vec<String> = Vec::new();
                for _ in 0..n {
                    items.push(match rng.below(10) {
                        0..=5 => name(rng),
                        6 => rng.pick(LITERALS).to_string(),
                        7 => format!("{}: f64", name(rng)),
                        8 => rng
                            .pick(&["*", "..", "(x)", "self", "r#type", "x.0", "-"])
                            .to_string(),
                        _ => rng.pick(PUNCTS).to_string(),
                    });
                }
                let sep = if rng.chance(85) {
                    ", "
                } else {
                    *rng.pick(&[" ", "; ", ": "])
                };
                let trailing = if rng.chance(15) { "," } else { "" };
                let open_close =
                    *rng.pick(&[("(", ")"), ("(", ")"), ("(", ")"), ("[", "]"), ("{", "}")]);
                format!(
                    "wrt{}{}{trailing}{}",
                    open_close.0,
                    items.join(sep),
                    open_close.1
                )
            }
            5 => "wrt".into(),
            6 => format!("wrt = {}", name(rng)),
            7 => format!("wrt({})({})", name(rng), name(rng)),
            8 => format!("wrt::{}", name(rng)),
            9 => rng
                .pick(&[
                    "dump",
                    "dump(1)",
                    "dump = true",
                    "dump, dump",
                    "Dump",
                    "r#dump",
                ])
                .to_string(),
            10 | 11 => {
                let unknown = rng.pick(&[
                    "foo",
                    "r#wrt",
                    "with_respect_to",
                    "WRT",
                    "grad",
                    "mode",
                    "_",
                    "self",
                    "fn",
                ]);
                match rng.below(3) {
                    0 => unknown.to_string(),
                    1 => format!("{unknown}({})", name(rng)),
                    _ => format!("{unknown} = {}", rng.pick(LITERALS)),
                }
            }
            12 => rng.pick(LITERALS).to_string(),
            _ => {
                let n = rng.range(1, 8);
                (0..n)
                    .map(|_| match rng.below(4) {
                        0 => rng.pick(IDENTS).to_string(),
                        1 => rng.pick(LITERALS).to_string(),
                        2 => rng.pick(PUNCTS).to_string(),
                        _ => rng.pick(&["()", "[]", "{}", "(x)", "(wrt(x))"]).to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        }
    };
    let n = rng.range(1, 3);
    let parts: Vec<String> = (0..n).map(|_| one(rng, &mut name)).collect();
    let sep = if rng.chance(80) {
        ", "
    } else {
        *rng.pick(&[" ", "; ", ",, "])
    };
    parts.join(sep)
}

/// A garbage attribute. The `dump` option prints the generated code: keep it rare (it is
/// slow and noisy).
fn garbage_attr(rng: &mut Rng, params: &[String]) -> String {
    let attr = random_attr(rng, params);
    if attr.contains("dump") && !rng.chance(2) {
        attr.replace("dump", "dumb")
    } else {
        attr
    }
}

fn param_names(item: &TokenStream) -> Vec<String> {
    match syn::parse2::<syn::ItemFn>(item.clone()) {
        Ok(f) => f
            .sig
            .inputs
            .iter()
            .filter_map(|input| match input {
                syn::FnArg::Typed(t) => match &*t.pat {
                    syn::Pat::Ident(p) => Some(p.ident.to_string()),
                    _ => None,
                },
                syn::FnArg::Receiver(_) => Some("self".into()),
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

// -----------------------------------------------------------------------------------------
// Cases
// -----------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Kind {
    Corpus,
    MutatedCorpus,
    Subset,
    MutatedSubset,
    Grammar,
    MutatedGrammar,
    Soup,
}

struct Case {
    kind: Kind,
    attr: TokenStream,
    item: TokenStream,
}

struct Corpus {
    items: Vec<(TokenStream, TokenStream)>,
    toks: Vec<Vec<Tok>>,
}

impl Corpus {
    fn load() -> Self {
        let mut items: Vec<(TokenStream, TokenStream)> = CORPUS
            .iter()
            .map(|(attr, item)| (tokens(attr), tokens(item)))
            .collect();
        items.extend(repository_corpus());
        let toks = items
            .iter()
            .map(|(_, item)| to_toks(item.clone()))
            .collect();
        Corpus { items, toks }
    }
}

fn generate(seed: u64, case: u64, corpus: &Corpus) -> Case {
    let mut rng = Rng::for_case(seed, case);
    let roll = rng.below(100);
    let kind = match roll {
        0..=3 => Kind::Corpus,
        4..=29 => Kind::MutatedCorpus,
        30..=49 => Kind::Subset,
        50..=59 => Kind::MutatedSubset,
        60..=84 => Kind::Grammar,
        85..=94 => Kind::MutatedGrammar,
        _ => Kind::Soup,
    };
    let (mut attr, item) = match kind {
        Kind::Corpus | Kind::MutatedCorpus => {
            let i = rng.below(corpus.items.len());
            let (attr, item) = corpus.items[i].clone();
            let item = if kind == Kind::MutatedCorpus {
                let mut toks = corpus.toks[i].clone();
                let n = if rng.chance(10) {
                    rng.range(5, 20)
                } else {
                    rng.range(1, 4)
                };
                for _ in 0..n {
                    mutate(&mut rng, &mut toks, &corpus.toks);
                }
                from_toks(&toks)
            } else {
                item
            };
            let attr = if kind == Kind::Corpus || rng.chance(25) {
                let params = param_names(&item);
                tokens(&garbage_attr(&mut rng, &params))
            } else {
                attr
            };
            (attr, item)
        }
        Kind::Grammar | Kind::MutatedGrammar | Kind::Subset | Kind::MutatedSubset => {
            let (text, params) = if matches!(kind, Kind::Subset | Kind::MutatedSubset) {
                SubsetGen::new(&mut rng).function()
            } else {
                let budget = rng.range(10, 80) as i32;
                Gen::new(&mut rng, budget).function()
            };
            let mut item = tokens(&text);
            if matches!(kind, Kind::MutatedGrammar | Kind::MutatedSubset) {
                let mut toks = to_toks(item);
                for _ in 0..rng.range(1, 4) {
                    mutate(&mut rng, &mut toks, &corpus.toks);
                }
                item = from_toks(&toks);
            }
            let attr = match rng.below(10) {
                0..=5 => String::new(),
                6 | 7 if !params.is_empty() => {
                    let k = rng.range(1, params.len());
                    let chosen: Vec<&str> = (0..k).map(|_| rng.pick(&params).as_str()).collect();
                    format!("wrt({})", chosen.join(", "))
                }
                _ => garbage_attr(&mut rng, &params),
            };
            (tokens(&attr), item)
        }
        Kind::Soup => {
            let n = rng.range(0, 30);
            let mut toks = Vec::new();
            if rng.chance(50) {
                toks.extend(to_toks(tokens("fn")));
            }
            for _ in 0..n {
                toks.extend(random_fragment(&mut rng));
                if rng.chance(10) {
                    let inner = std::mem::take(&mut toks);
                    toks.push(Tok::Group(random_delimiter(&mut rng), inner));
                }
            }
            let attr = garbage_attr(&mut rng, &[]);
            (tokens(&attr), from_toks(&toks))
        }
    };
    if rng.chance(1) {
        attr = TokenStream::new();
    }
    Case { kind, attr, item }
}

// -----------------------------------------------------------------------------------------
// Running one case
// -----------------------------------------------------------------------------------------

thread_local! {
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<PanicInfo>> = const { RefCell::new(None) };
}

#[derive(Clone, Debug)]
struct PanicInfo {
    /// Where the panic was raised.
    location: String,
    /// The innermost frame in the macro's own code (not this test): the key of a failure.
    origin: String,
    message: String,
}

/// The innermost frame of the macro's own code (outside this module) in a printed
/// backtrace: `path:line (function)` when there is debug information, else the function's
/// name.
fn origin_in_crate(backtrace: &str) -> Option<String> {
    let mut function = "";
    let mut first_function = None;
    for line in backtrace.lines().map(str::trim) {
        if let Some(place) = line.strip_prefix("at ") {
            let ours = place.starts_with("./src/") || place.contains("autodiff-macros/src/");
            if ours && !place.contains("never_panics") {
                return Some(format!("{place} ({function})"));
            }
        } else if let Some((_, name)) = line.split_once(": ") {
            function = name;
            if first_function.is_none()
                && name.contains("autodiff_macros::")
                && !name.contains("never_panics")
            {
                first_function = Some(name.to_string());
            }
        }
    }
    first_function
}

/// Installs (once) a panic hook that records panics on threads running cases, quietly, and
/// leaves every other thread's panics to the previous hook.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CAPTURING.with(Cell::get) {
                let location = info
                    .location()
                    .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                    .unwrap_or_else(|| "<unknown>".into());
                let payload = info.payload();
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "<non-string payload>".into());
                // a panic inside a dependency (`Ident::new`, `format_ident!`, an index out of
                // bounds in `core`) is told apart by the macro's own frame that called it
                let origin = if location.starts_with("autodiff-macros/src/") {
                    location.clone()
                } else {
                    let backtrace = std::backtrace::Backtrace::force_capture().to_string();
                    origin_in_crate(&backtrace).unwrap_or_else(|| {
                        // no frame of the macro found: keep the backtrace's first lines
                        let head: Vec<&str> = backtrace.lines().take(40).collect();
                        format!("{location}; backtrace:\n{}", head.join("\n"))
                    })
                };
                LAST_PANIC.with(|p| {
                    *p.borrow_mut() = Some(PanicInfo {
                        location,
                        origin,
                        message,
                    })
                });
            } else {
                previous(info);
            }
        }));
    });
}

/// What the expansion produced.
#[derive(Debug)]
enum Outcome {
    /// Generated items, no error.
    Code,
    /// `compile_error!`s with these messages.
    Errors(Vec<String>),
    /// Neither code nor a message: rustc reports the problem on the user's function.
    Silent,
    /// The expansion panicked.
    Panic(PanicInfo),
    /// The output is not well-formed.
    Malformed(String),
}

fn expand_caught(attr: &TokenStream, item: &TokenStream) -> Result<TokenStream, PanicInfo> {
    caught(|| expand::differentiate(attr.clone(), item.clone()))
}

/// Runs `f`, turning a panic into what the hook recorded about it.
fn caught<T>(f: impl FnOnce() -> T) -> Result<T, PanicInfo> {
    CAPTURING.with(|c| c.set(true));
    LAST_PANIC.with(|p| p.borrow_mut().take());
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CAPTURING.with(|c| c.set(false));
    result.map_err(|_| {
        LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or(PanicInfo {
                location: "<unknown>".into(),
                origin: "<unknown>".into(),
                message: "<no message>".into(),
            })
    })
}

fn is_compile_error(mac: &syn::Macro) -> bool {
    mac.path
        .segments
        .last()
        .is_some_and(|s| s.ident == "compile_error")
}

/// The messages of the `compile_error!`s in `file`, or why one is malformed.
fn compile_errors(file: &syn::File) -> Result<Vec<String>, String> {
    struct Finder(Vec<Result<String, String>>);
    impl<'ast> Visit<'ast> for Finder {
        fn visit_macro(&mut self, mac: &'ast syn::Macro) {
            if is_compile_error(mac) {
                self.0
                    .push(match syn::parse2::<syn::LitStr>(mac.tokens.clone()) {
                        Ok(lit) if !lit.value().trim().is_empty() => Ok(lit.value()),
                        Ok(_) => Err("a `compile_error!` with an empty message".into()),
                        Err(_) => Err(format!(
                            "a `compile_error!` whose argument is not one string literal: {}",
                            mac.tokens
                        )),
                    });
            }
        }
    }
    let mut finder = Finder(Vec::new());
    finder.visit_file(file);
    finder.0.into_iter().collect()
}

/// Checks the output of the expansion of `item`.
fn check_output(item: &TokenStream, out: &TokenStream) -> Outcome {
    // an `impl` block is expanded as its marked methods are: the block (marks removed) first
    let is_impl = syn::parse2::<syn::ItemFn>(item.clone()).is_err()
        && syn::parse2::<syn::ItemImpl>(item.clone()).is_ok();
    let is_fn = is_impl || syn::parse2::<syn::ItemFn>(item.clone()).is_ok();
    let rest: TokenStream = if is_fn {
        out.clone()
    } else {
        // not a function: the item is passed through untouched, followed by one error
        let input: Vec<String> = item.clone().into_iter().map(|t| t.to_string()).collect();
        let output: Vec<TokenTree> = out.clone().into_iter().collect();
        let same_prefix = output.len() >= input.len()
            && input.iter().zip(&output).all(|(a, b)| *a == b.to_string());
        if !same_prefix {
            return Outcome::Malformed(
                "the item that is not a function is not passed through untouched".into(),
            );
        }
        output[input.len()..].iter().cloned().collect()
    };
    let file = match syn::parse2::<syn::File>(rest) {
        Ok(file) => file,
        Err(e) => {
            return Outcome::Malformed(format!("the output does not parse as Rust items: {e}"))
        }
    };
    if is_impl && !matches!(file.items.first(), Some(syn::Item::Impl(_))) {
        return Outcome::Malformed(
            "the expansion of an `impl` block does not start with it".into(),
        );
    }
    let errors = match compile_errors(&file) {
        Ok(errors) => errors,
        Err(why) => return Outcome::Malformed(why),
    };
    if !is_fn {
        return if errors.len() == 1 {
            Outcome::Errors(errors)
        } else {
            Outcome::Malformed(format!(
                "{} errors after an item that is not a function",
                errors.len()
            ))
        };
    }
    if !errors.is_empty() {
        return Outcome::Errors(errors);
    }
    // no message: either generated code, or stubs whose bodies are `unreachable!()` (the
    // problem is one rustc reports on the user's function); generated code has
    // `unreachable!` with a message only
    // (the stubs write `::core::unreachable!()`; a function's own `unreachable!()`, copied
    // into generated code, is not one)
    struct Stubs(bool);
    impl<'ast> Visit<'ast> for Stubs {
        fn visit_macro(&mut self, mac: &'ast syn::Macro) {
            let path: Vec<String> = mac
                .path
                .segments
                .iter()
                .map(|s| s.ident.to_string())
                .collect();
            self.0 |= mac.tokens.is_empty()
                && mac.path.leading_colon.is_some()
                && path == ["core", "unreachable"];
        }
    }
    let mut stubs = Stubs(false);
    stubs.visit_file(&file);
    if stubs.0 || file.items.len() == 1 {
        Outcome::Silent
    } else {
        Outcome::Code
    }
}

fn run_case(attr: &TokenStream, item: &TokenStream) -> (Outcome, Option<TokenStream>) {
    run_case_with(attr, item, true)
}

/// [`run_case`], formatting the generated code (as `dump` does) only when `pretty` is set.
fn run_case_with(
    attr: &TokenStream,
    item: &TokenStream,
    pretty: bool,
) -> (Outcome, Option<TokenStream>) {
    match expand_caught(attr, item) {
        Ok(out) => {
            let outcome = check_output(item, &out);
            if pretty && matches!(outcome, Outcome::Code) {
                // what `dump` prints: the generated code through prettyplease
                if let Err(info) = caught(|| expand::pretty(&out)) {
                    return (Outcome::Panic(info), Some(out));
                }
            }
            (outcome, Some(out))
        }
        Err(info) => (Outcome::Panic(info), None),
    }
}

// -----------------------------------------------------------------------------------------
// Reducing a failing input
// -----------------------------------------------------------------------------------------

/// Every way to make `toks` one step smaller: delete a tree, replace a group by its
/// content, empty a group.
fn reductions(toks: &[Tok]) -> Vec<Vec<Tok>> {
    let mut out = Vec::new();
    // a whole `,`- or `;`-separated segment: a parameter, a statement, an argument
    let is_separator = |t: &Tok| matches!(t, Tok::Leaf(TokenTree::Punct(p)) if p.as_char() == ',' || p.as_char() == ';');
    let mut segment_start = 0;
    for i in 0..=toks.len() {
        if i == toks.len() || is_separator(&toks[i]) {
            let end = (i + 1).min(toks.len());
            if end > segment_start + 1 {
                let mut without = toks.to_vec();
                without.drain(segment_start..end);
                out.push(without);
            }
            segment_start = i + 1;
        }
    }
    // runs of a few token trees
    for n in [4, 3, 2] {
        for i in 0..toks.len().saturating_sub(n - 1) {
            let mut without = toks.to_vec();
            without.drain(i..i + n);
            out.push(without);
        }
    }
    for i in 0..toks.len() {
        let mut deleted = toks.to_vec();
        deleted.remove(i);
        out.push(deleted);
        if let Tok::Group(delimiter, inner) = &toks[i] {
            let mut unwrapped = toks.to_vec();
            unwrapped.splice(i..i + 1, inner.iter().cloned());
            out.push(unwrapped);
            if !inner.is_empty() {
                let mut emptied = toks.to_vec();
                emptied[i] = Tok::Group(*delimiter, Vec::new());
                out.push(emptied);
            }
            for smaller in reductions(inner) {
                let mut nested = toks.to_vec();
                nested[i] = Tok::Group(*delimiter, smaller);
                out.push(nested);
            }
        }
    }
    out
}

/// Greedily shrinks `(attr, item)` while `fails` holds.
fn reduce(
    attr: &TokenStream,
    item: &TokenStream,
    fails: &dyn Fn(&TokenStream, &TokenStream) -> bool,
) -> (TokenStream, TokenStream) {
    let mut attr = to_toks(attr.clone());
    let mut item = to_toks(item.clone());
    let mut tries = 0;
    // each try may capture a backtrace: bound the time spent on one failure
    let began = Instant::now();
    loop {
        let mut improved = false;
        for smaller in reductions(&attr) {
            tries += 1;
            if fails(&from_toks(&smaller), &from_toks(&item)) {
                attr = smaller;
                improved = true;
                break;
            }
        }
        if !improved {
            for smaller in reductions(&item) {
                tries += 1;
                if fails(&from_toks(&attr), &from_toks(&smaller)) {
                    item = smaller;
                    improved = true;
                    break;
                }
            }
        }
        if !improved || tries > 200_000 || began.elapsed() > Duration::from_secs(60) {
            return (from_toks(&attr), from_toks(&item));
        }
    }
}

// -----------------------------------------------------------------------------------------
// The test
// -----------------------------------------------------------------------------------------

fn env_u64(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    let text = text.trim().replace('_', "");
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={text} is not a number")))
}

#[derive(Default)]
struct Stats {
    cases: u64,
    /// Cases and cases whose item parses as a function, by kind.
    by_kind: HashMap<Kind, (u64, u64)>,
    parsed_fn: u64,
    code: u64,
    errors: u64,
    silent: u64,
    messages: HashMap<String, u64>,
    /// First case of each distinct failure, by location or reason.
    failures: Vec<(String, u64, Case, Outcome, u64)>,
    internal_errors: Vec<(u64, Case, String)>,
}

/// The diagnostic's message without the parts that name the user's code.
fn message_shape(message: &str) -> String {
    let mut out = String::new();
    let mut in_code = false;
    for c in message.chars() {
        if c == '`' {
            in_code = !in_code;
            out.push(c);
            if in_code {
                out.push('…');
            }
        } else if !in_code {
            out.push(c);
        }
    }
    out.chars().take(90).collect()
}

/// With `AUTODIFF_NEVER_PANICS_SILENT_OUT=file.rs`, appends a function the macro left to
/// rustc, without its attribute, as `mod case_N { .. }`: compiled in a crate, any that rustc
/// accepts is one whose gradient would be a stub panicking at run time.
fn write_silent_case(case_number: u64, case: &Case) {
    use std::io::Write;
    let Ok(path) = std::env::var("AUTODIFF_NEVER_PANICS_SILENT_OUT") else {
        return;
    };
    let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    else {
        return;
    };
    let item = &case.item;
    let _ = writeln!(file, "mod case_{case_number} {{ use super::*; {item} }}");
}

fn record(stats: &mut Stats, case_number: u64, case: Case, outcome: Outcome) {
    stats.cases += 1;
    let is_fn = syn::parse2::<syn::ItemFn>(case.item.clone()).is_ok();
    let by_kind = stats.by_kind.entry(case.kind).or_default();
    by_kind.0 += 1;
    if is_fn {
        by_kind.1 += 1;
        stats.parsed_fn += 1;
    }
    let key = match &outcome {
        Outcome::Code => {
            stats.code += 1;
            return;
        }
        Outcome::Silent => {
            stats.silent += 1;
            if is_fn {
                write_silent_case(case_number, &case);
            }
            return;
        }
        Outcome::Errors(messages) => {
            stats.errors += 1;
            for m in messages {
                *stats.messages.entry(message_shape(m)).or_default() += 1;
            }
            let internal = messages.iter().find(|m| m.contains("internal error"));
            if let Some(m) = internal {
                if stats.internal_errors.len() < 20 {
                    stats.internal_errors.push((case_number, case, m.clone()));
                }
            }
            return;
        }
        Outcome::Panic(info) => format!("panic at {}", info.origin),
        Outcome::Malformed(why) => format!(
            "malformed output: {}",
            why.chars().take(60).collect::<String>()
        ),
    };
    match stats.failures.iter_mut().find(|f| f.0 == key) {
        Some(failure) => failure.4 += 1,
        None => stats.failures.push((key, case_number, case, outcome, 1)),
    }
}

fn report_failure(
    seed: u64,
    key: &str,
    case_number: u64,
    case: &Case,
    outcome: &Outcome,
    count: u64,
) -> String {
    let mut text = format!(
        "\n=== {key} ({count} cases)\nseed {seed:#x}, case {case_number} ({:?}); replay with \
         AUTODIFF_NEVER_PANICS_SEED={seed:#x} AUTODIFF_NEVER_PANICS_START={case_number} AUTODIFF_NEVER_PANICS_CASES=1\n\
         attribute: {}\nitem: {}\n",
        case.kind, case.attr, case.item
    );
    match outcome {
        Outcome::Panic(info) => {
            text += &format!(
                "panic: {}\n  at {}\n  from {}\n",
                info.message, info.location, info.origin
            );
            let origin = info.origin.clone();
            let fails = move |a: &TokenStream, i: &TokenStream| match expand_caught(a, i) {
                Err(p) => p.origin == origin,
                Ok(_) => false,
            };
            let (attr, item) = reduce(&case.attr, &case.item, &fails);
            text += &format!("reduced: #[differentiate({attr})] {item}\n");
        }
        Outcome::Malformed(why) => {
            text += &format!("{why}\n");
            let why = why.clone();
            let fails = move |a: &TokenStream, i: &TokenStream| matches!(run_case(a, i).0, Outcome::Malformed(w) if w == why);
            let (attr, item) = reduce(&case.attr, &case.item, &fails);
            text += &format!("reduced: #[differentiate({attr})] {item}\n");
            if let (_, Some(out)) = run_case(&attr, &item) {
                text += &format!("its output: {out}\n");
            }
        }
        _ => {}
    }
    text
}

/// Runs the cases on the current thread; returns the summary, or the summary and the
/// report of every distinct failure.
fn run(
    seed: u64,
    start: u64,
    cases: u64,
    seconds: Option<u64>,
    verbose: bool,
    progress: &AtomicU64,
) -> Result<String, String> {
    let corpus = Corpus::load();
    let began = Instant::now();
    let mut stats = Stats::default();
    for case_number in start..start.saturating_add(cases) {
        if seconds.is_some_and(|s| began.elapsed().as_secs() >= s) {
            break;
        }
        progress.store(case_number, Ordering::SeqCst);
        let case = generate(seed, case_number, &corpus);
        // formatting the generated code as `dump` does is slow: one case in eight
        let (outcome, out) = run_case_with(&case.attr, &case.item, case_number % 8 == 0);
        if verbose && cases <= 100 {
            let parsed = match syn::parse2::<syn::ItemFn>(case.item.clone()) {
                Ok(_) => "a function".to_string(),
                Err(e) => format!("not a function: {e}"),
            };
            eprintln!(
                "case {case_number} ({:?})\nattribute: {}\nitem ({parsed}): {}\noutcome: {outcome:?}\noutput: {}\n",
                case.kind,
                case.attr,
                case.item,
                out.map(|o| o.to_string()).unwrap_or_default()
            );
        }
        record(&mut stats, case_number, case, outcome);
    }
    let elapsed = began.elapsed();
    let count = |panic: bool| -> u64 {
        stats
            .failures
            .iter()
            .filter(|f| matches!(f.3, Outcome::Panic(_)) == panic)
            .map(|f| f.4)
            .sum()
    };
    let (panics, malformed) = (count(true), count(false));
    let kinds = [
        Kind::Corpus,
        Kind::MutatedCorpus,
        Kind::Subset,
        Kind::MutatedSubset,
        Kind::Grammar,
        Kind::MutatedGrammar,
        Kind::Soup,
    ]
    .iter()
    .map(|k| {
        let (n, parsed) = stats.by_kind.get(k).copied().unwrap_or((0, 0));
        format!("{k:?} {n} ({parsed} functions)")
    })
    .collect::<Vec<_>>()
    .join(", ");
    let mut summary = format!(
        "never_panics: seed {seed:#x}, cases {start}..{end}: {n} cases in {secs:.1}s ({kinds}; corpus of {corpus_len} functions)\n\
         never_panics: {parsed} parsed as functions; {code} expanded to code, {errors} to compile_error!s, {silent} left to rustc\n\
         never_panics: {panics} panics, {malformed} malformed outputs, {internal} internal errors, {distinct} distinct diagnostics\n",
        end = start + stats.cases,
        n = stats.cases,
        secs = elapsed.as_secs_f64(),
        corpus_len = corpus.items.len(),
        parsed = stats.parsed_fn,
        code = stats.code,
        errors = stats.errors,
        silent = stats.silent,
        internal = stats.internal_errors.len(),
        distinct = stats.messages.len(),
    );
    if verbose {
        let mut messages: Vec<_> = stats.messages.iter().collect();
        messages.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (message, count) in messages {
            summary += &format!("  {count:>8}  {message}\n");
        }
    }
    for (case_number, case, message) in &stats.internal_errors {
        summary += &format!(
            "never_panics: internal error on case {case_number}: {message}\n  attribute: {}\n  item: {}\n",
            case.attr, case.item
        );
    }
    if stats.failures.is_empty() {
        return Ok(summary);
    }
    let mut text = format!(
        "{summary}the expansion failed on {} of {} cases ({} distinct failures):",
        panics + malformed,
        stats.cases,
        stats.failures.len()
    );
    for (key, case_number, case, outcome, count) in &stats.failures {
        text += &report_failure(seed, key, *case_number, case, outcome, *count);
    }
    Err(text)
}

#[test]
fn expansion_never_panics() {
    install_hook();
    let seed = env_u64("AUTODIFF_NEVER_PANICS_SEED").unwrap_or(DEFAULT_SEED);
    let cases = env_u64("AUTODIFF_NEVER_PANICS_CASES").unwrap_or(DEFAULT_CASES);
    let start = env_u64("AUTODIFF_NEVER_PANICS_START").unwrap_or(0);
    let seconds = env_u64("AUTODIFF_NEVER_PANICS_SECONDS");
    let verbose = std::env::var("AUTODIFF_NEVER_PANICS_VERBOSE").is_ok_and(|v| v != "0");

    let progress = Arc::new(AtomicU64::new(u64::MAX));
    let done = Arc::new(AtomicBool::new(false));
    let worker = {
        let (progress, done) = (progress.clone(), done.clone());
        std::thread::Builder::new()
            .name("never_panics".into())
            // deep syntax trees recurse deeply in syn and in the lowering
            .stack_size(256 << 20)
            .spawn(move || {
                install_hook();
                let result = run(seed, start, cases, seconds, verbose, &progress);
                done.store(true, Ordering::SeqCst);
                result
            })
            .expect("spawn the worker")
    };
    // watchdog: a case that never finishes is a hang
    let hang_limit =
        env_u64("AUTODIFF_NEVER_PANICS_HANG_SECONDS").map_or(HANG_LIMIT, Duration::from_secs);
    let mut last = (u64::MAX, Instant::now());
    while !done.load(Ordering::SeqCst) && !worker.is_finished() {
        std::thread::sleep(Duration::from_millis(50));
        let now = progress.load(Ordering::SeqCst);
        if now != last.0 {
            last = (now, Instant::now());
        } else if now != u64::MAX && last.1.elapsed() > hang_limit {
            let case = generate(seed, now, &Corpus::load());
            panic!(
                "the expansion hangs (over {hang_limit:?}) on seed {seed:#x}, case {now} ({:?})\nattribute: {}\nitem: {}",
                case.kind, case.attr, case.item
            );
        }
    }
    match worker.join() {
        Ok(Ok(summary)) => eprint!("{summary}"),
        Ok(Err(report)) => panic!("{report}"),
        Err(_) => panic!(
            "the property-test driver itself panicked (seed {seed:#x}, case {})",
            progress.load(Ordering::SeqCst)
        ),
    }
}

/// `AUTODIFF_NEVER_PANICS_INPUT=file.rs`: expands every `#[differentiate]` item of the file
/// (a reduced case, say) and prints its outcome, time and output; does nothing otherwise.
#[test]
fn expand_input_file() {
    let Ok(path) = std::env::var("AUTODIFF_NEVER_PANICS_INPUT") else {
        return;
    };
    install_hook();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let file = syn::parse_file(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut items = Vec::new();
    collect_items(&file.items, &mut items);
    eprintln!("{path}: {} items", items.len());
    for (attr, item) in items {
        // the macro parses its input again: time that alone
        let began = Instant::now();
        let parsed = syn::parse2::<syn::ItemFn>(item.clone()).is_ok();
        eprintln!(
            "  parsed (function: {parsed}) in {:.3}s",
            began.elapsed().as_secs_f64()
        );
        let began = Instant::now();
        let (outcome, out) = run_case(&attr, &item);
        eprintln!(
            "#[differentiate({attr})] {item}\n  => {outcome:?} in {:.3}s\n  output: {}\n",
            began.elapsed().as_secs_f64(),
            out.map(|o| o.to_string()).unwrap_or_default()
        );
    }
}
