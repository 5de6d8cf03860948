//! A small closed-loop load generator for the benchmarks: `concurrency` clients
//! each send requests back to back for `duration`; latencies are kept whole, so
//! percentiles are exact.

use std::time::{Duration, Instant};

use reqwest::{Client, Method};

#[derive(Debug, Clone)]
pub struct LoadReport {
    pub requests: usize,
    pub errors: usize,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl LoadReport {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>9.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  ({} requests, {} errors)",
            self.per_second(),
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
            self.max.as_secs_f64() * 1e3,
            self.requests,
            self.errors
        )
    }
}

/// One request of the load: method, URL, headers and body, cloned per send.
#[derive(Debug, Clone)]
pub struct Target {
    pub method: Method,
    pub url: String,
    pub bearer: Option<String>,
    pub json: Option<serde_json::Value>,
}

pub async fn run(target: Target, concurrency: usize, duration: Duration) -> LoadReport {
    run_expecting(target, None, concurrency, duration).await
}

/// As [`run`], counting only answers with `status` (any success when `None`)
/// as served: for a request whose measured answer is a refusal.
pub async fn run_expecting(
    target: Target,
    status: Option<reqwest::StatusCode>,
    concurrency: usize,
    duration: Duration,
) -> LoadReport {
    let client = Client::builder().pool_max_idle_per_host(concurrency).tcp_nodelay(true).build().unwrap_or_default();
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            while Instant::now() < deadline {
                let mut request = client.request(target.method.clone(), &target.url);
                if let Some(token) = &target.bearer {
                    request = request.bearer_auth(token);
                }
                if let Some(body) = &target.json {
                    request = request.json(body);
                }
                let sent = Instant::now();
                let ok = match request.send().await {
                    Ok(response) => {
                        let expected = status.map_or(response.status().is_success(), |s| response.status() == s);
                        expected && response.bytes().await.is_ok()
                    }
                    Err(_) => false,
                };
                if ok {
                    latencies.push(sent.elapsed());
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        if let Ok((latencies, e)) = task.await {
            all.extend(latencies);
            errors += e;
        }
    }
    let elapsed = started.elapsed();
    all.sort_unstable();
    let pick = |q: f64| {
        all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or_default()
    };
    LoadReport {
        requests: all.len(),
        errors,
        elapsed,
        p50: pick(0.50),
        p99: pick(0.99),
        max: all.last().copied().unwrap_or_default(),
    }
}

/// Resident set size of a process, from `/proc/<pid>/status`, in MiB.
pub fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// A process's resident memory (`VmRSS`) split as the kernel counts it (`RssAnon`,
/// `RssFile` + `RssShmem`), in MiB: the heap and stacks apart from the mapped
/// pages of the binary and libraries, which grow with the binary's size and are
/// shared between processes running the same one.
pub fn rss_split_mib(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |field: &str| -> Option<f64> {
        status.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()
    };
    Some((kib("RssAnon:")? / 1024.0, (kib("RssFile:")? + kib("RssShmem:")?) / 1024.0))
}

/// CPU time a process has used so far, all its threads, user and system, in
/// seconds (`/proc/<pid>/stat`, in the kernel's 100 Hz clock ticks). The
/// difference over a load depends less than a rate on what else the machine was
/// doing.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields after it.
    let mut fields = stat.get(stat.rfind(')')? + 2..)?.split_whitespace();
    // utime and stime are the 14th and 15th fields, the 12th and 13th after the name.
    let user: f64 = fields.nth(11)?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user + system) / 100.0)
}

/// Peak resident set size of a process (`VmHWM`), in MiB.
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_with_work_no_faster_than_the_cores_allow_and_the_split_adds_up_to_the_rss() {
        let pid = std::process::id();
        let before = cpu_seconds(pid).unwrap();
        let started = Instant::now();
        let mut x = 1u64;
        let mut spent = 0.0;
        // Spin until a tenth of a second is counted (other tests share the cores).
        while spent < 0.1 && started.elapsed() < Duration::from_secs(60) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            spent = cpu_seconds(pid).unwrap() - before;
        }
        let cores = std::thread::available_parallelism().unwrap().get() as f64;
        let most = started.elapsed().as_secs_f64() * cores + 0.02; // a tick's rounding either side
        assert!(spent >= 0.1, "a minute of spinning counted as {spent} s");
        assert!(spent <= most, "{spent} s of CPU in {:?} on {cores} cores", started.elapsed());

        let (anon, file) = rss_split_mib(pid).unwrap();
        let total = rss_mib(pid).unwrap();
        assert!(anon > 0.0 && file > 0.0, "{anon} + {file}");
        // Read a moment apart, so allow a little movement.
        assert!((anon + file - total).abs() < 1.0, "{anon} + {file} against {total}");
    }
}
