//! 256-bit integers, Go `big.Int.Bytes()` encoding, exact ticket EV and Go `big.Rat` formatting.

use num_bigint::{BigInt, BigUint, Sign};
use num_rational::BigRational;
use num_traits::{Signed, Zero};

use crate::error::PmError;

pub use ruint::aliases::U256;

/// `maxWinProb = 2^256 - 1`: win probabilities are numerators over this.
pub const MAX_WIN_PROB: U256 = U256::MAX;

/// Minimal big-endian bytes of `v`, zero being empty: Go's `big.Int.Bytes()`, the wire
/// encoding of every TicketParams integer (§1.2, §19.6).
pub fn min_be_bytes(v: &U256) -> Vec<u8> {
    let full: [u8; 32] = v.to_be_bytes();
    let first = full.iter().position(|b| *b != 0).unwrap_or(32);
    full[first..].to_vec()
}

/// Minimal big-endian bytes of a `u64`.
pub fn min_be_bytes_u64(v: u64) -> Vec<u8> {
    let full = v.to_be_bytes();
    let first = full.iter().position(|b| *b != 0).unwrap_or(8);
    full[first..].to_vec()
}

/// Reads a big-endian unsigned integer of any length (Go `SetBytes`), failing above 2^256-1.
pub fn u256_from_be(field: &'static str, bytes: &[u8]) -> Result<U256, PmError> {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    U256::try_from_be_slice(&bytes[first..]).ok_or_else(|| PmError::InvalidField {
        field,
        reason: format!("{} bytes do not fit 256 bits", bytes.len() - first),
    })
}

/// Reads a big-endian unsigned integer of any length, failing above `u64::MAX`.
pub fn u64_from_be(field: &'static str, bytes: &[u8]) -> Result<u64, PmError> {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let bytes = &bytes[first..];
    if bytes.len() > 8 {
        return Err(PmError::InvalidField {
            field,
            reason: format!("{} bytes do not fit 64 bits", bytes.len()),
        });
    }
    Ok(bytes.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b)))
}

/// `uint256_be(v)`: the 32-byte big-endian word.
pub fn be32(v: &U256) -> [u8; 32] {
    v.to_be_bytes()
}

/// Converts to an arbitrary-precision unsigned integer.
pub fn to_biguint(v: &U256) -> BigUint {
    BigUint::from_bytes_be(&v.to_be_bytes::<32>())
}

/// Converts to an arbitrary-precision signed integer.
pub fn to_bigint(v: &U256) -> BigInt {
    BigInt::from_biguint(Sign::Plus, to_biguint(v))
}

/// `faceValue * winProb / (2^256 - 1)` as an exact rational (GL pm/ticket.go `ticketEV`).
pub fn ticket_ev(face_value: &U256, win_prob: &U256) -> BigRational {
    BigRational::new(
        to_bigint(face_value) * to_bigint(win_prob),
        to_bigint(&MAX_WIN_PROB),
    )
}

/// Converts an exact rational to its integer value when it is one.
pub fn rational_from_u256(v: &U256) -> BigRational {
    BigRational::from_integer(to_bigint(v))
}

/// Go's `big.Rat.FloatString(prec)`: `prec` decimals, the last one rounded to nearest with
/// halves away from zero. Used in the go-livepeer error texts about EV.
pub fn float_string(x: &BigRational, prec: usize) -> String {
    let num = x.numer().abs();
    let den = x.denom().abs();
    let mut q = &num / &den;
    let mut r = &num % &den;
    let p = BigInt::from(10u8).pow(prec as u32);
    r *= &p;
    let r2 = &r % &den;
    let mut r = &r / &den;
    if den <= r2 * 2 {
        r += 1;
        if r >= p {
            q += 1;
            r -= &p;
        }
    }
    let mut out = String::new();
    if x.is_negative() {
        out.push('-');
    }
    out.push_str(&q.to_string());
    if prec > 0 {
        let digits = r.to_string();
        out.push('.');
        out.extend(std::iter::repeat_n('0', prec.saturating_sub(digits.len())));
        out.push_str(&digits);
    }
    out
}

/// Exact value of an `f64` as a rational, as Go's `big.Rat.SetFloat64` gives it.
pub fn rational_from_f64(v: f64) -> BigRational {
    if v == 0.0 || !v.is_finite() {
        return BigRational::zero();
    }
    let bits = v.to_bits();
    let negative = bits >> 63 == 1;
    let exp = ((bits >> 52) & 0x7ff) as i64;
    let frac = bits & ((1u64 << 52) - 1);
    let (mantissa, exp) = if exp == 0 {
        (frac, -1074)
    } else {
        (frac | 1 << 52, exp - 1075)
    };
    let m = BigInt::from(mantissa);
    let r = if exp >= 0 {
        BigRational::from_integer(m << exp as usize)
    } else {
        BigRational::new(m, BigInt::from(1u8) << (-exp) as usize)
    };
    if negative {
        -r
    } else {
        r
    }
}

/// Smallest integer at or above `x`.
pub fn ceil_to_bigint(x: &BigRational) -> BigInt {
    x.ceil().to_integer()
}
