//! How the text outputs write numbers: grouped digits, durations in a readable unit, capitalised names.

use std::fmt::{self, Display, Formatter};

/// An integer with `,` between groups of three digits: `10,000`.
pub(crate) struct Thousands(pub u64);

impl Display for Thousands {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let digits = self.0.to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3);
        for (index, digit) in digits.chars().enumerate() {
            if index > 0 && (digits.len() - index) % 3 == 0 {
                out.push(',');
            }
            out.push(digit);
        }
        f.pad(&out)
    }
}

/// Nanoseconds in the largest unit that keeps a digit before the point: `8.2s`, `950.3ms`, `12.0µs`.
pub(crate) struct Duration(pub u64);

impl Display for Duration {
    #[allow(clippy::cast_precision_loss)]
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let ns = self.0 as f64;
        let text = if ns >= 1e9 {
            format!("{:.1}s", ns / 1e9)
        } else if ns >= 1e6 {
            format!("{:.1}ms", ns / 1e6)
        } else if ns >= 1e3 {
            format!("{:.1}µs", ns / 1e3)
        } else {
            format!("{}ns", self.0)
        };
        f.pad(&text)
    }
}

/// A byte count in the largest binary unit that keeps a digit before the point: `512 B`, `1.5 KiB`.
pub(crate) struct Bytes(pub f64);

impl Display for Bytes {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
        let mut value = self.0;
        if value < 1024.0 {
            return f.pad(&format!("{value:.0} B"));
        }
        let mut unit = UNITS[0];
        value /= 1024.0;
        for next in &UNITS[1..] {
            if value < 1024.0 {
                break;
            }
            value /= 1024.0;
            unit = next;
        }
        f.pad(&format!("{value:.1} {unit}"))
    }
}

/// A phase name with its first letter upper-cased, as the report shows it.
pub(crate) struct Capitalized<'a>(pub &'a str);

impl Display for Capitalized<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut chars = self.0.chars();
        if let Some(first) = chars.next() {
            write!(f, "{}{}", first.to_uppercase(), chars.as_str())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        let cases = [(0, "0"), (999, "999"), (1_000, "1,000"), (10_000, "10,000"), (1_234_567, "1,234,567")];
        for (value, text) in cases {
            assert_eq!(Thousands(value).to_string(), text);
        }
    }

    #[test]
    fn bytes_pick_their_unit() {
        let cases = [(0.0, "0 B"), (1023.0, "1023 B"), (1536.0, "1.5 KiB"), (3.0 * 1024.0 * 1024.0, "3.0 MiB")];
        for (bytes, text) in cases {
            assert_eq!(Bytes(bytes).to_string(), text);
        }
    }

    #[test]
    fn durations_pick_their_unit() {
        let cases = [(8_200_000_000, "8.2s"), (950_300_000, "950.3ms"), (12_000, "12.0µs"), (999, "999ns")];
        for (ns, text) in cases {
            assert_eq!(Duration(ns).to_string(), text);
        }
    }
}
