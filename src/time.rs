//! Caller-supplied time.
//!
//! The core never reads a clock. Every timer is expressed as an [`Instant`]:
//! a [`Duration`] since an epoch the caller picks (process start, connection
//! start, a simulated clock in tests). The only requirement is that the values
//! passed to one connection never go backwards.

use core::ops::{Add, Sub};
use core::time::Duration;

/// A point in time, as a duration since an epoch chosen by the caller.
///
/// ```
/// use core::time::Duration;
/// use wsproto::Instant;
///
/// let start = Instant::from_duration(Duration::from_secs(10));
/// let later = start + Duration::from_millis(500);
/// assert_eq!(later - start, Duration::from_millis(500));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Instant(Duration);

impl Instant {
    /// The epoch itself.
    pub const ZERO: Instant = Instant(Duration::ZERO);

    /// The instant `d` after the caller's epoch.
    pub const fn from_duration(d: Duration) -> Self {
        Instant(d)
    }

    /// The instant `ms` milliseconds after the caller's epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Instant(Duration::from_millis(ms))
    }

    /// Time elapsed since the caller's epoch.
    pub const fn as_duration(self) -> Duration {
        self.0
    }

    /// `self - earlier`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    /// `self + d`, saturating at the largest representable instant instead of
    /// overflowing (a huge configured timeout must not panic).
    pub fn saturating_add(self, d: Duration) -> Instant {
        Instant(self.0.checked_add(d).unwrap_or(Duration::MAX))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        self.saturating_add(rhs)
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    /// `self - d`, saturating at the epoch.
    fn sub(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_sub(rhs))
    }
}

impl Sub for Instant {
    type Output = Duration;
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}
