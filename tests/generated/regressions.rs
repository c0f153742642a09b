//! Generated functions that once failed, kept as regression tests (docs/testing.md says how
//! to add one: paste the function, its callees, its wrappers and its table entry that the
//! failure message prints, renaming `fN` if the name is taken).

#[allow(unused_imports)]
use crate::harness::{Case, Flatten, Probe};
#[allow(unused_imports)]
use autodiff::prelude::*;
#[allow(unused_imports)]
use num_traits::NumAssign;
#[allow(unused_imports)]
use std::iter::{Product, Sum};

/// No generated function has produced a wrong gradient yet; the compile-time failures the
/// generator found are listed in docs/testing.md (they cannot be kept here while they do not
/// compile).
pub static CASES: &[Case] = &[];
