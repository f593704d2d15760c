//! Task-level `cpu` and `memory` strings: ECS accepts CPU units or vCPUs, MiB or GB, and stores
//! the converted integer.

use crate::ValidationError;

/// CPU units in one vCPU.
const UNITS_PER_VCPU: u64 = 1024;
/// MiB in one GB (ECS's "GB" is 1024 MiB).
const MIB_PER_GB: u64 = 1024;

/// Parses a task-level `cpu`: an integer number of CPU units (`"256"`, `"1024"`) or a number of
/// vCPUs with a `vCPU` suffix in any case, with or without a space (`"1 vCPU"`, `"0.25 vcpu"`,
/// `"2vCPU"`). One vCPU is 1024 units; a fraction must come to a whole number of units.
/// Range checks are [`super::validate`]'s job.
pub fn parse_cpu_units(s: &str) -> Result<u32, ValidationError> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let value = match lower.strip_suffix("vcpu") {
        Some(number) => decimal_times(number.trim_end(), UNITS_PER_VCPU),
        None => integer(t),
    };
    value.ok_or_else(|| {
        ValidationError::client(
            "cpu",
            format!(
                "cpu: invalid 'cpu' setting for task: '{s}' is neither a whole number of CPU \
                 units (e.g. 1024) nor a number of vCPUs that comes to whole units (e.g. 1 vCPU, \
                 0.25 vCPU)"
            ),
        )
    })
}

/// Parses a task-level `memory`: an integer number of MiB (`"512"`) or a number of GB with a `GB`
/// suffix in any case, with or without a space (`"1GB"`, `"0.5GB"`, `"2 GB"`). One GB is
/// 1024 MiB; a fraction must come to a whole number of MiB.
pub fn parse_memory_mib(s: &str) -> Result<u32, ValidationError> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let value = match lower.strip_suffix("gb") {
        Some(number) => decimal_times(number.trim_end(), MIB_PER_GB),
        None => integer(t),
    };
    value.ok_or_else(|| {
        ValidationError::client(
            "memory",
            format!(
                "memory: invalid 'memory' setting for task: '{s}' is neither a whole number of \
                 MiB (e.g. 512) nor a number of GB that comes to whole MiB (e.g. 1GB, 0.5 GB)"
            ),
        )
    })
}

/// A string of ASCII digits as a `u32`.
fn integer(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `number × scale` for a plain decimal (`"2"`, `"0.25"`, `".5"`), when it is a whole `u32`.
fn decimal_times(number: &str, scale: u64) -> Option<u32> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(fraction) || fraction.len() > 9 {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut total = whole.checked_mul(scale)?;
    if !fraction.is_empty() {
        let denominator = 10u64.pow(fraction.len() as u32);
        let numerator = fraction.parse::<u64>().ok()?.checked_mul(scale)?;
        if !numerator.is_multiple_of(denominator) {
            return None;
        }
        total = total.checked_add(numerator / denominator)?;
    }
    u32::try_from(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn cpu_table() {
        let ok = [
            ("256", 256),
            ("1024", 1024),
            ("0", 0),
            (" 512 ", 512),
            ("1 vCPU", 1024),
            ("1 vcpu", 1024),
            ("1vCPU", 1024),
            ("0.25 vcpu", 256),
            (".25 vCPU", 256),
            ("0.5 VCPU", 512),
            ("0.125 vCPU", 128),
            ("2 vCPU", 2048),
            ("16 vCPU", 16384),
            ("192 vCPU", 196_608),
        ];
        for (input, want) in ok {
            assert_eq!(parse_cpu_units(input).unwrap(), want, "{input}");
        }
        let bad = [
            "",
            "  ",
            "vCPU",
            "abc",
            "-1",
            "1.5",
            "0.1 vCPU",
            "1e3",
            "1 cpu",
            "1 vCPUs",
            "+1",
            "99999999999",
        ];
        for input in bad {
            let err = parse_cpu_units(input).unwrap_err();
            assert_eq!(err.field, "cpu", "{input}");
            assert_eq!(err.kind, ErrorKind::Client);
            assert!(
                err.message.contains(&format!("'{input}'")),
                "{}",
                err.message
            );
        }
    }

    #[test]
    fn memory_table() {
        let ok = [
            ("512", 512),
            ("1024", 1024),
            ("1GB", 1024),
            ("1gb", 1024),
            ("0.5GB", 512),
            ("2 GB", 2048),
            ("30 GB", 30720),
            ("1.5 GB", 1536),
            (".25GB", 256),
        ];
        for (input, want) in ok {
            assert_eq!(parse_memory_mib(input).unwrap(), want, "{input}");
        }
        let bad = [
            "",
            "GB",
            "1 MB",
            "512MiB",
            "0.1GB",
            "-512",
            "1,024",
            "1 G",
            "5000000 GB",
        ];
        for input in bad {
            let err = parse_memory_mib(input).unwrap_err();
            assert_eq!(err.field, "memory", "{input}");
            assert_eq!(err.kind, ErrorKind::Client);
        }
    }
}
