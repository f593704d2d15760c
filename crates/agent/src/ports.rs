//! Host ports: the dynamic range `hostPort: 0` draws from, the reserved ports, and the ports
//! the agent's tasks hold.
//!
//! Like the ECS agent, the picker scans from just after the last port it handed out, skips
//! reserved and held ports, and probes each candidate by binding it, so that a port some other
//! program listens on is never handed out either.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::ops::RangeInclusive;

use berth_model::common::TransportProtocol;

/// The default dynamic host port range (the ECS agent's fallback).
pub const DEFAULT_RANGE: RangeInclusive<u16> = 49153..=65535;

/// Ports reserved on every host: ssh and the Docker daemon's.
pub const DEFAULT_RESERVED: [u16; 3] = [22, 2375, 2376];

/// Parses `START-END` (ECS_DYNAMIC_HOST_PORT_RANGE's format).
pub fn parse_range(s: &str) -> Result<RangeInclusive<u16>, String> {
    let bad = || format!("dynamic port range '{s}': write it as START-END, e.g. 49153-65535");
    let (start, end) = s.trim().split_once('-').ok_or_else(bad)?;
    let start: u16 = start.trim().parse().map_err(|_| bad())?;
    let end: u16 = end.trim().parse().map_err(|_| bad())?;
    if start == 0 || start > end {
        return Err(bad());
    }
    Ok(start..=end)
}

/// Whether nothing on this host listens on `port` (checked by binding it on all addresses).
pub fn is_free(port: u16, protocol: TransportProtocol) -> bool {
    match protocol {
        TransportProtocol::Tcp => TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok(),
        TransportProtocol::Udp => UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok(),
    }
}

/// Hands out host ports and remembers which ones the agent's tasks hold.
#[derive(Debug)]
pub struct PortPicker {
    range: RangeInclusive<u16>,
    reserved: BTreeSet<u16>,
    held: BTreeSet<(u16, TransportProtocol)>,
    last: u16,
}

impl PortPicker {
    /// A picker for `range`; `reserved` ports are never handed out. The scan starts at a random
    /// place in the range, so that two agents on one host seldom probe the same ports.
    pub fn new(range: RangeInclusive<u16>, reserved: impl IntoIterator<Item = u16>) -> Self {
        let last = rand::random_range(range.clone());
        PortPicker {
            range,
            reserved: reserved.into_iter().collect(),
            held: BTreeSet::new(),
            last,
        }
    }

    /// Marks a port as held by a task (a static host port, or one found on an adopted container).
    pub fn hold(&mut self, port: u16, protocol: TransportProtocol) {
        self.held.insert((port, protocol));
    }

    /// Gives a port back.
    pub fn release(&mut self, port: u16, protocol: TransportProtocol) {
        self.held.remove(&(port, protocol));
    }

    /// Picks and holds a free port from the range; `probe` says whether the host has it free.
    /// `None` when every port of the range is taken.
    pub fn pick(
        &mut self,
        protocol: TransportProtocol,
        probe: impl Fn(u16, TransportProtocol) -> bool,
    ) -> Option<u16> {
        let (start, end) = (*self.range.start(), *self.range.end());
        let size = u32::from(end - start) + 1;
        for step in 1..=size {
            let offset = (u32::from(self.last.saturating_sub(start)) + step) % size;
            let port = u16::try_from(u32::from(start) + offset).ok()?;
            if self.reserved.contains(&port) || self.held.contains(&(port, protocol)) {
                continue;
            }
            if probe(port, protocol) {
                self.last = port;
                self.held.insert((port, protocol));
                return Some(port);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TransportProtocol::{Tcp, Udp};

    #[test]
    fn never_hands_out_reserved_or_held_ports() {
        let mut picker = PortPicker::new(100..=105, [101, 103]);
        picker.hold(104, Tcp);
        let mut got = BTreeSet::new();
        while let Some(p) = picker.pick(Tcp, |_, _| true) {
            assert!(got.insert(p), "port {p} handed out twice");
        }
        assert_eq!(got, BTreeSet::from([100, 102, 105]));
        // UDP is a separate space: 104 is held for TCP only.
        assert_eq!(
            (0..4)
                .filter_map(|_| picker.pick(Udp, |_, _| true))
                .collect::<BTreeSet<_>>(),
            BTreeSet::from([100, 102, 104, 105])
        );
        picker.release(102, Tcp);
        assert_eq!(picker.pick(Tcp, |_, _| true), Some(102));
    }

    #[test]
    fn skips_ports_the_probe_finds_busy() {
        let mut picker = PortPicker::new(200..=203, []);
        let p = picker.pick(Tcp, |port, _| port == 202);
        assert_eq!(p, Some(202));
        assert_eq!(picker.pick(Tcp, |port, _| port == 202), None);
    }

    #[test]
    fn probes_really_bind() {
        let taken = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        assert!(!is_free(port, Tcp));
        let mut picker = PortPicker::new(port..=port, []);
        assert_eq!(picker.pick(Tcp, is_free), None);
    }

    #[test]
    fn parses_ranges() {
        assert_eq!(parse_range("49153-65535"), Ok(49153..=65535));
        for bad in ["", "5-1", "0-10", "a-b", "100"] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
    }
}
