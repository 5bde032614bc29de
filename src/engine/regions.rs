//! Where a forward pass spends its time, by named region, for `vaced bench --only step` with
//! `VACED_PROFILE_REGIONS=1` (the device machine's profilers read no counters under its
//! sandbox). Each region synchronises the device before and after itself, so a region's time
//! is its own work, unoverlapped; the regions' sum exceeds an unprofiled step by the
//! synchronisations. Off (the default) a region is a plain call.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use candle_core::{Device, Result};

/// Environment switch: `1` records regions.
pub const ENV: &str = "VACED_PROFILE_REGIONS";

/// Seconds and calls per region since the last [`take`].
static TOTALS: Mutex<BTreeMap<&'static str, (f64, u64)>> = Mutex::new(BTreeMap::new());

pub fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var(ENV).is_ok_and(|v| v == "1"))
}

/// Runs `work` as region `name` on `device`.
pub fn region<T>(
    name: &'static str,
    device: &Device,
    work: impl FnOnce() -> Result<T>,
) -> Result<T> {
    if enabled() {
        timed(name, device, work)
    } else {
        work()
    }
}

/// Consecutive parts of one piece of work, each booked as a region of its own (within a
/// region that times the whole): `let mut laps = Laps::start(device)?;`, the first part,
/// `laps.lap("first")?;`, the next, `laps.lap("second")?;`. Off, it does nothing.
pub struct Laps<'a> {
    device: &'a Device,
    since: Option<Instant>,
}

impl<'a> Laps<'a> {
    pub fn start(device: &'a Device) -> Result<Self> {
        let since = if enabled() {
            device.synchronize()?;
            Some(Instant::now())
        } else {
            None
        };
        Ok(Self { device, since })
    }

    /// Books the work queued since the last lap (or the start) as region `name`.
    pub fn lap(&mut self, name: &'static str) -> Result<()> {
        if let Some(since) = self.since {
            self.device.synchronize()?;
            book(name, since.elapsed().as_secs_f64());
            self.since = Some(Instant::now());
        }
        Ok(())
    }
}

fn book(name: &'static str, secs: f64) {
    // A poisoned lock only loses measurements.
    if let Ok(mut totals) = TOTALS.lock() {
        let entry = totals.entry(name).or_default();
        entry.0 += secs;
        entry.1 += 1;
    }
}

fn timed<T>(name: &'static str, device: &Device, work: impl FnOnce() -> Result<T>) -> Result<T> {
    device.synchronize()?;
    let start = Instant::now();
    let out = work()?;
    device.synchronize()?;
    book(name, start.elapsed().as_secs_f64());
    Ok(out)
}

/// One region's share of the work measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RegionTime {
    pub region: &'static str,
    pub secs: f64,
    pub calls: u64,
}

/// The regions recorded since the last call, largest first; clears them.
pub fn take() -> Vec<RegionTime> {
    let totals = match TOTALS.lock() {
        Ok(mut totals) => std::mem::take(&mut *totals),
        Err(_) => BTreeMap::new(),
    };
    let mut out: Vec<RegionTime> = totals
        .into_iter()
        .map(|(region, (secs, calls))| RegionTime {
            region,
            secs,
            calls,
        })
        .collect();
    out.sort_by(|a, b| b.secs.total_cmp(&a.secs));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The totals are one global: tests that take them run one at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    #[test]
    fn regions_add_up_per_name_and_clear_when_taken() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dev = Device::Cpu;
        let nap = || -> Result<()> {
            std::thread::sleep(std::time::Duration::from_millis(20));
            Ok(())
        };
        assert_eq!(timed("short", &dev, || Ok(3)).unwrap(), 3);
        timed("long", &dev, nap).unwrap();
        timed("long", &dev, nap).unwrap();
        assert!(timed::<()>("failed", &dev, || candle_core::bail!("no")).is_err());
        let got = take();
        // Largest first; a failed region records nothing.
        assert_eq!(
            got.iter().map(|r| (r.region, r.calls)).collect::<Vec<_>>(),
            [("long", 2), ("short", 1)]
        );
        assert!(got[0].secs >= 0.04);
        assert!(take().is_empty());
    }

    #[test]
    fn laps_book_each_part_only_when_regions_are_on() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dev = Device::Cpu;
        let mut laps = Laps::start(&dev).unwrap();
        laps.lap("part").unwrap();
        // The switch is read from the environment once; either way the laps agree with it.
        let booked = take().iter().any(|r| r.region == "part");
        assert_eq!(booked, enabled());
        let mut laps = Laps {
            device: &dev,
            since: Some(Instant::now()),
        };
        std::thread::sleep(std::time::Duration::from_millis(10));
        laps.lap("first").unwrap();
        laps.lap("second").unwrap();
        let got = take();
        let first = got.iter().find(|r| r.region == "first").unwrap();
        let second = got.iter().find(|r| r.region == "second").unwrap();
        assert!(first.secs >= 0.01 && second.secs < first.secs);
        assert_eq!((first.calls, second.calls), (1, 1));
    }
}
