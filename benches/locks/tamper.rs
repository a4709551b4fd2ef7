//! Tamper -> restored: an approved file is overwritten (chmod, write), and the time until the
//! daemon has put the approved bytes back (polled every 0.2 ms) is measured.

use super::api::Daemon;
use super::Run;
use anyhow::{bail, Result};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

const APPROVED: &[u8] = b"# Approved report\n\nShip it.\n";

fn approve(d: &Daemon) -> Result<()> {
    std::fs::write(d.ws.join("inbox/report.md"), APPROVED)?;
    let h = serde_json::json!({"handoff_version": "1.0", "id": "bench-approve", "task_id": "t",
        "from_agent": "bench", "artifacts": [{"path": "inbox/report.md"}]});
    let tmp = d.ws.join(".handoff.tmp");
    std::fs::write(&tmp, serde_json::to_vec(&h)?)?;
    std::fs::rename(&tmp, d.ws.join("handoff.json"))?;
    let auth = format!("Bearer {}", d.token);
    let url = format!("{}/api/v1/handoffs/bench-approve/decision", d.url);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sent = ureq::post(&url)
            .set("Authorization", &auth)
            .send_json(serde_json::json!({"outcome": "approved", "revision": 1}));
        if sent.is_ok() {
            break;
        }
        if Instant::now() > deadline {
            bail!("the handoff was never approved");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // The watch on the new approved/ is added within a second.
    std::thread::sleep(Duration::from_millis(1500));
    Ok(())
}

pub fn runs(d: &Daemon, runs: usize) -> Result<Vec<Run>> {
    approve(d)?;
    let file = d.ws.join("approved/report.md");
    let mut out = Vec::new();
    for _ in 0..runs {
        let mut lat = Vec::new();
        let started = Instant::now();
        for i in 0..20 {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644))?;
            let t = Instant::now();
            std::fs::write(&file, format!("tampered {i}\n"))?;
            while std::fs::read(&file).ok().as_deref() != Some(APPROVED) {
                if t.elapsed() > Duration::from_secs(10) {
                    bail!("not restored within 10 s");
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            lat.push(t.elapsed().as_secs_f64() * 1e3);
            // Let the daemon finish the burst its own restore caused.
            std::thread::sleep(Duration::from_millis(100));
        }
        out.push(Run::new(lat, started.elapsed()));
    }
    Ok(out)
}
