//! Fills a data directory with organizations and sessions, for benchmarks and
//! for trying the admin listing on a realistically large file.
//!
//! ```text
//! cargo run --release --example seed_data -- --data DIR --orgs 10000 --sessions 1000000
//! cargo run --release -- check --data DIR
//! ```
//!
//! It opens `DIR/gateway.redb` through [`wa_gateway::store::Store::open`] (so the
//! meta table and schema are the gateway's own) and writes the `organizations`,
//! `sessions` and `org_sessions` tables directly, through the public table
//! definitions and record encoders, in batched write transactions (default
//! 50 000 sessions per transaction). Session ids are monotonic ULIDs from
//! [`wa_gateway::new_id`]; organizations are `org_00001`, `org_00002`, ...
//! Values are deterministic pseudo-random but realistic: mixed statuses, some
//! phone numbers and WhatsApp JIDs, `gatewayId` mostly `gw-local-1`, some
//! `gw-sg-1`, and a few large tenants holding a bigger share of the sessions.
//! Prints rows/s and the elapsed time. `wa-gateway check` passes on the result.
//!
//! `bench.rs` includes this file as a module (`#[path = "seed_data.rs"]`) and
//! calls [`seed`].

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use redb::ReadableTableMetadata;
use wa_gateway::store::records::{OrgStatus, Organization, Record, Session, SessionStatus};
use wa_gateway::store::tables::{ORGS, ORG_SESSIONS, SESSIONS};
use wa_gateway::store::{data_file, Store, StoreResult};

/// What [`seed`] wrote and how long it took.
#[derive(Debug, Clone)]
pub struct SeedStats {
    pub orgs: u64,
    pub sessions: u64,
    pub transactions: u64,
    pub elapsed: Duration,
    pub file_bytes: u64,
}

impl SeedStats {
    /// Sessions written per second.
    pub fn rows_per_sec(&self) -> f64 {
        self.sessions as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// redb page cache used while seeding (bigger than the server's: bulk writes).
pub const SEED_CACHE_BYTES: usize = 256 * 1024 * 1024;

/// The id of organization `i` (1-based): `org_00001` ... (5 digits, or more
/// when there are more than 99 999 organizations).
pub fn org_id(i: u64, total: u64) -> String {
    let width = total.to_string().len().max(5);
    format!("org_{i:0width$}")
}

/// splitmix64: a tiny deterministic PRNG, enough for plausible field values.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `pct` percent.
    fn pct(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

const LABELS: [&str; 8] = ["Support", "Sales", "Billing", "Marketing", "Ops", "Alerts", "Concierge", "Onboarding"];

fn status_for(rng: &mut Rng) -> SessionStatus {
    match rng.below(100) {
        0..=44 => SessionStatus::Working,
        45..=69 => SessionStatus::Stopped,
        70..=79 => SessionStatus::ScanQrCode,
        80..=86 => SessionStatus::LoggedOut,
        87..=93 => SessionStatus::Failed,
        _ => SessionStatus::Starting,
    }
}

fn session_for(rng: &mut Rng, org: String, org_index: u64, created_at: i64) -> Session {
    let status = status_for(rng);
    // Sessions that ever paired have a number; ones waiting for a QR scan mostly not.
    let has_phone = match status {
        SessionStatus::Working | SessionStatus::LoggedOut | SessionStatus::Failed => rng.pct(95),
        SessionStatus::ScanQrCode => rng.pct(10),
        _ => rng.pct(50),
    };
    let phone = has_phone.then(|| {
        let cc = ["62", "65", "1", "44", "49", "91", "55", "234"][rng.below(8) as usize];
        format!("{cc}{:010}", rng.below(10_000_000_000))
    });
    let paired = phone.is_some() && status != SessionStatus::ScanQrCode;
    let wa_jid = if paired { phone.as_ref().map(|p| format!("{p}@s.whatsapp.net")) } else { None };
    let wa_lid = if paired && rng.pct(60) {
        Some(format!("{}@lid", 100_000_000_000_000 + rng.below(900_000_000_000_000)))
    } else {
        None
    };
    let last_connected_at = paired.then(|| created_at + rng.below(30 * 86_400_000) as i64);
    let updated_at = last_connected_at.unwrap_or(created_at) + rng.below(3_600_000) as i64;
    let custom_rates = rng.pct(10);
    Session {
        organization_id: org,
        created_by_user_id: format!("user_{:05}_{}", org_index, rng.below(4)),
        gateway_id: if rng.pct(85) { "gw-local-1" } else { "gw-sg-1" }.to_string(),
        label: format!("{} {}", LABELS[rng.below(LABELS.len() as u64) as usize], 1 + rng.below(99)),
        phone_number: phone,
        status,
        auto_read: rng.pct(20),
        presence_typing: !rng.pct(15),
        rate_per_min: if custom_rates { 5 + rng.below(200) as u32 } else { 20 },
        rate_per_hour: if custom_rates { 100 + rng.below(5000) as u32 } else { 600 },
        is_admin_session: rng.pct(2),
        wa_jid,
        wa_lid,
        last_connected_at,
        desired_running: matches!(status, SessionStatus::Working | SessionStatus::Starting | SessionStatus::Failed),
        last_error: (status == SessionStatus::Failed).then(|| "connection closed: stream errored (conflict)".to_string()),
        created_at,
        updated_at,
    }
}

/// Picks the organization (1-based) for the next session: 80% uniform over all
/// organizations, 20% over the first 1% ("large tenants").
fn pick_org(rng: &mut Rng, orgs: u64) -> u64 {
    if rng.pct(20) {
        1 + rng.below((orgs / 100).max(1))
    } else {
        1 + rng.below(orgs)
    }
}

/// Writes `orgs` organizations and `sessions` sessions spread over them into
/// `dir/gateway.redb` (created if needed), `batch` sessions per durable write
/// transaction. Organizations that already exist are overwritten; sessions are
/// always new (fresh ULIDs).
pub fn seed(dir: &Path, orgs: u64, sessions: u64, batch: u64, quiet: bool) -> StoreResult<SeedStats> {
    assert!(orgs > 0 || sessions == 0, "sessions need at least one organization");
    let batch = batch.max(1);
    let started = Instant::now();
    let path = data_file(dir);
    let store = Store::open(&path, SEED_CACHE_BYTES)?;
    let base_ms = wa_gateway::store::now_ms();
    let mut rng = Rng(0x5EED_0000 ^ sessions ^ (orgs << 32));
    let mut transactions = 0;

    // Organizations: one transaction (10k rows is small), created over the
    // last year, a few suspended, a few with a session cap well above their
    // seeded count (so `POST /sessions` keeps working for them).
    {
        let txn = store.write()?;
        {
            let mut table = txn.open_table(ORGS)?;
            for i in 1..=orgs {
                let created_at = base_ms - 365 * 86_400_000 + (i as i64 * 1000);
                let org = Organization {
                    name: format!("Organization {i}"),
                    status: if rng.pct(2) { OrgStatus::Suspended } else { OrgStatus::Active },
                    max_sessions: if rng.pct(10) { Some(100_000) } else { None },
                    created_at,
                    updated_at: created_at + rng.below(86_400_000) as i64,
                    max_stored_bytes: None,
                };
                table.insert(org_id(i, orgs).as_str(), org.encode().as_slice())?;
            }
        }
        txn.commit()?;
        transactions += 1;
    }

    // Sessions, in batches. Index entries are sorted per batch before insert,
    // so the (org, id) b-tree is written in key order.
    let mut written = 0u64;
    let mut index: Vec<(String, u128)> = Vec::with_capacity(batch.min(sessions) as usize);
    let mut last_report = Instant::now();
    while written < sessions {
        let n = batch.min(sessions - written);
        let txn = store.write()?;
        {
            let mut table = txn.open_table(SESSIONS)?;
            index.clear();
            let mut by_status = std::collections::HashMap::new();
            for _ in 0..n {
                let id = wa_gateway::new_id();
                let o = pick_org(&mut rng, orgs);
                let org = org_id(o, orgs);
                let s = session_for(&mut rng, org.clone(), o, id.timestamp_ms() as i64);
                let key = u128::from(id);
                table.insert(key, s.encode().as_slice())?;
                *by_status.entry(s.status).or_insert(0i64) += 1;
                index.push((org, key));
            }
            for (status, count) in by_status {
                wa_gateway::store::sessions::bump_status(&txn, status, count)?;
            }
            index.sort_unstable();
            let mut org_index = txn.open_table(ORG_SESSIONS)?;
            for (org, key) in &index {
                org_index.insert((org.as_str(), *key), ())?;
            }
        }
        txn.commit()?;
        transactions += 1;
        written += n;
        if !quiet && last_report.elapsed() >= Duration::from_secs(2) {
            last_report = Instant::now();
            let secs = started.elapsed().as_secs_f64();
            eprintln!("  seeded {written}/{sessions} sessions ({:.0} rows/s)", written as f64 / secs);
        }
    }

    let total = store.read()?.open_table(SESSIONS)?.len()?;
    store.close()?;
    let elapsed = started.elapsed();
    let file_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    if total != written {
        eprintln!("note: the file now holds {total} sessions ({written} written by this run)");
    }
    Ok(SeedStats { orgs, sessions: written, transactions, elapsed, file_bytes })
}

/// Number of sessions already in `dir`'s data file (0 if there is none).
/// Opens the file the way the server does, so it must not be in use.
pub fn existing_sessions(dir: &Path) -> StoreResult<u64> {
    let path = data_file(dir);
    if !path.is_file() {
        return Ok(0);
    }
    let store = Store::open(&path, 4 * 1024 * 1024)?;
    let n = store.session_count()?;
    store.close()?;
    Ok(n)
}

#[derive(Parser, Debug)]
#[command(about = "Fill a wa-gateway data directory with organizations and sessions")]
struct Args {
    /// Data directory (its gateway.redb is created if missing).
    #[arg(long)]
    data: PathBuf,
    /// Number of organizations (org_00001 ...).
    #[arg(long, default_value_t = 10_000)]
    orgs: u64,
    /// Number of sessions, spread over the organizations.
    #[arg(long, default_value_t = 1_000_000)]
    sessions: u64,
    /// Sessions per write transaction.
    #[arg(long, default_value_t = 50_000)]
    batch: u64,
    /// Seed even if the file already holds sessions (adds to them).
    #[arg(long)]
    append: bool,
}

fn main() {
    let args = Args::parse();
    if args.orgs == 0 && args.sessions > 0 {
        eprintln!("error: --sessions needs --orgs of at least 1");
        std::process::exit(2);
    }
    match existing_sessions(&args.data) {
        Ok(0) => {}
        Ok(n) if !args.append => {
            eprintln!(
                "error: {} already holds {n} sessions; pass --append to add more, or use an empty directory",
                data_file(&args.data).display()
            );
            std::process::exit(2);
        }
        Ok(_) => {}
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
    match seed(&args.data, args.orgs, args.sessions, args.batch, false) {
        Ok(s) => {
            println!(
                "seeded {} organizations and {} sessions into {} in {} transactions",
                s.orgs,
                s.sessions,
                data_file(&args.data).display(),
                s.transactions
            );
            println!("elapsed:   {:.2} s", s.elapsed.as_secs_f64());
            println!("rate:      {:.0} sessions/s", s.rows_per_sec());
            println!("file size: {:.1} MiB", s.file_bytes as f64 / (1024.0 * 1024.0));
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
