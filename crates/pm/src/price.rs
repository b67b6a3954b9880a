//! Price per pixel as a reduced fraction, `PriceInfo` conversion and go-livepeer's rounding
//! (§9.8; GL common/util.go `RatPriceInfo`, `PriceToFixed`; core/orchestrator.go `priceInfo`).

use std::fmt;

use num_bigint::{BigInt, BigUint};
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};

use crate::error::PmError;
use crate::num::{to_bigint, U256};
use crate::wire::PriceInfoMsg;

/// `priceScalingFactor`: auto-adjusted prices are floored to 3 decimals.
pub const PRICE_SCALING_FACTOR: i64 = 1000;

/// Wei per pixel as an exact, reduced, non-negative fraction.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Price(BigRational);

impl Price {
    /// A price of `price_per_unit / pixels_per_unit` wei per pixel.
    pub fn new(price_per_unit: i64, pixels_per_unit: i64) -> Result<Price, PmError> {
        if pixels_per_unit == 0 {
            return Err(PmError::ZeroPixelsPerUnit);
        }
        Price::from_rational(BigRational::new(
            BigInt::from(price_per_unit),
            BigInt::from(pixels_per_unit),
        ))
    }

    /// A price from an exact rational, which must not be negative.
    pub fn from_rational(r: BigRational) -> Result<Price, PmError> {
        if r.is_negative() {
            return Err(PmError::NegativePrice);
        }
        Ok(Price(r))
    }

    /// Zero wei per pixel.
    pub fn zero() -> Price {
        Price(BigRational::zero())
    }

    /// Go `RatPriceInfo`: `pricePerUnit / pixelsPerUnit`, reduced.
    pub fn from_price_info(info: &PriceInfoMsg) -> Result<Price, PmError> {
        Price::new(info.price_per_unit, info.pixels_per_unit)
    }

    /// The wire form: the reduced numerator and denominator (1.5 goes out as 3/2).
    pub fn to_price_info(&self) -> Result<PriceInfoMsg, PmError> {
        let (n, d) = (self.0.numer().to_i64(), self.0.denom().to_i64());
        match (n, d) {
            (Some(price_per_unit), Some(pixels_per_unit)) => Ok(PriceInfoMsg {
                price_per_unit,
                pixels_per_unit,
                ..PriceInfoMsg::default()
            }),
            _ => Err(PmError::PriceOverflow(self.to_string())),
        }
    }

    /// The exact rational value.
    pub fn as_rational(&self) -> &BigRational {
        &self.0
    }

    /// Reduced numerator (Go `price.Num()`).
    pub fn numer(&self) -> BigUint {
        self.0.numer().magnitude().clone()
    }

    /// Reduced denominator (Go `price.Denom()`, 1 for zero).
    pub fn denom(&self) -> BigUint {
        self.0.denom().magnitude().clone()
    }

    /// Whether the price is zero.
    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    /// The fee for `pixels` pixels, exactly.
    pub fn fee_for_pixels(&self, pixels: u64) -> BigRational {
        &self.0 * BigRational::from_integer(BigInt::from(pixels))
    }

    /// Go `PriceToFixed`: `floor(price × 1000)`.
    pub fn to_fixed(&self) -> BigInt {
        (&self.0 * BigRational::from_integer(BigInt::from(PRICE_SCALING_FACTOR)))
            .floor()
            .to_integer()
    }

    /// Go `FixedToPrice`: `fixed / 1000`, reduced.
    pub fn from_fixed(fixed: BigInt) -> Result<Price, PmError> {
        Price::from_rational(BigRational::new(fixed, BigInt::from(PRICE_SCALING_FACTOR)))
    }

    /// The price an orchestrator advertises with `-autoAdjustPrice`:
    /// `base × (1 + 1/txCostMultiplier)` with `txCostMultiplier = faceValue / txCost`
    /// (no overhead when the base price or txCost is 0), then floored to 3 decimals.
    pub fn auto_adjusted(&self, face_value: &U256, tx_cost: &U256) -> Price {
        let mut overhead = BigRational::one();
        if !self.is_zero() && !tx_cost.is_zero() && !face_value.is_zero() {
            // 1 / (faceValue / txCost) = txCost / faceValue
            overhead += BigRational::new(to_bigint(tx_cost), to_bigint(face_value));
        }
        let adjusted = Price(&self.0 * overhead);
        // floor() of a non-negative value stays non-negative.
        Price(BigRational::new(
            adjusted.to_fixed(),
            BigInt::from(PRICE_SCALING_FACTOR),
        ))
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.0.numer(), self.0.denom())
    }
}

impl fmt::Debug for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Price({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_info_is_reduced() {
        let p = Price::new(3000, 2000).expect("valid");
        let info = p.to_price_info().expect("fits");
        assert_eq!((info.price_per_unit, info.pixels_per_unit), (3, 2));
        assert_eq!(
            Price::new(0, 7)
                .expect("valid")
                .to_price_info()
                .expect("fits")
                .pixels_per_unit,
            1
        );
        assert_eq!(Price::new(1, 0), Err(PmError::ZeroPixelsPerUnit));
        assert_eq!(Price::new(-1, 2), Err(PmError::NegativePrice));
        // A negative denominator with a negative numerator is a positive price.
        assert_eq!(
            Price::new(-3, -2).expect("positive"),
            Price::new(3, 2).expect("valid")
        );
    }

    #[test]
    fn fixed_point_floors_to_three_decimals() {
        let p = Price::new(2, 3).expect("valid"); // 0.6666…
        assert_eq!(p.to_fixed(), BigInt::from(666));
        let back = Price::from_fixed(p.to_fixed()).expect("non-negative");
        assert_eq!(back.to_price_info().expect("fits").price_per_unit, 333);
        assert_eq!(back.to_price_info().expect("fits").pixels_per_unit, 500);
    }

    #[test]
    fn auto_adjust_adds_tx_cost_overhead() {
        // base 1 wei/pixel, faceValue = 100 × txCost → price 1.01 → 101/100
        let base = Price::new(1, 1).expect("valid");
        let adj = base.auto_adjusted(&U256::from(100_000u64), &U256::from(1_000u64));
        let info = adj.to_price_info().expect("fits");
        assert_eq!((info.price_per_unit, info.pixels_per_unit), (101, 100));
        // base 1/3: 0.3333… × 1.01 = 0.33666… → floor 0.336 → 42/125
        let third = Price::new(1, 3).expect("valid");
        let adj = third.auto_adjusted(&U256::from(100u64), &U256::from(1u64));
        let info = adj.to_price_info().expect("fits");
        assert_eq!((info.price_per_unit, info.pixels_per_unit), (42, 125));
        // zero txCost: no overhead, still floored
        let adj = third.auto_adjusted(&U256::from(100u64), &U256::ZERO);
        assert_eq!(adj.to_fixed(), BigInt::from(333));
    }
}
