//! Kills a process writing the store at random points, many times, and checks after each kill
//! that the store opens, validates, and every qube is entirely its old or its new state.
//!
//! The writer is this test binary re-executed with `CORRAL_CRASH_DIR` set, running
//! `crash_writer` (ignored in normal runs) which loops over create, clone, rename,
//! set-property and remove through the real [`Store`].

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use corral_domains::model::Class;
use corral_domains::{QubeName, Store};

/// A small xorshift generator; the seed is printed so a failure can be replayed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn seed() -> u64 {
    std::env::var("CORRAL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        })
}

fn n(s: &str) -> QubeName {
    QubeName::new(s).unwrap()
}

/// The invariants a killed writer must never break.
fn check(dir: &Path) -> usize {
    // A child the killed writer forked (cp) may hold the lock fd until its exec; wait briefly.
    let t0 = Instant::now();
    let s = loop {
        match Store::open(dir) {
            Err(corral_domains::StoreError::Locked(_)) if t0.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(2))
            }
            r => break r.expect("store opens after a kill"),
        }
    };
    let m = s.model();
    m.validate().expect("model valid");
    for (name, q) in &m.qubes {
        // set-property writes these three together; a mix would show here.
        if let Some(g) = q.features.get("gen") {
            let g: u32 = g.parse().unwrap();
            assert_eq!(q.memory, 400 + g, "{name}: memory from another generation");
            assert_eq!(q.vcpus, g % 8 + 1, "{name}: vcpus from another generation");
        }
        // The record names a volume only once the volume is complete.
        if let Some(token) = q.features.get("stamp") {
            let p = s.volume_dir(q.qid).join("private/stamp");
            let got = fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("{name}: record says stamped, {}: {e}", p.display()));
            assert_eq!(&got, token, "{name}: volume content from another qube");
        }
    }
    // No volume without a record survives an open.
    for e in fs::read_dir(dir.join("volumes")).unwrap() {
        let e = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            m.qubes.values().any(|q| q.qid.to_string() == e),
            "orphan volume {e}"
        );
    }
    m.qubes.len()
}

#[test]
fn killing_the_writer_never_corrupts_the_store() {
    let dir = std::env::temp_dir().join(format!("corral-crash-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let seed = seed();
    eprintln!("CORRAL_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();
    let rounds = 60;
    let mut max_qubes = 0;
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args([
                "crash_writer",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("CORRAL_CRASH_DIR", &dir)
            .env("CORRAL_CRASH_SEED", rng.next().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(5 + rng.below(60)));
        // SIGKILL: no destructor, no flush; exactly a crash.
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(
            status.code().is_none(),
            "round {round}: writer exited by itself: {status}"
        );
        max_qubes = max_qubes.max(check(&dir));
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "took too long"
        );
    }
    // The writer really wrote: the store grew at some point.
    assert!(max_qubes > 1, "the writer never got to create qubes");
    fs::remove_dir_all(&dir).unwrap();
}

/// The writer, run only as the child of the test above.
#[test]
#[ignore = "helper: run by killing_the_writer_never_corrupts_the_store"]
fn crash_writer() {
    let Some(dir) = std::env::var_os("CORRAL_CRASH_DIR").map(PathBuf::from) else {
        return;
    };
    let mut rng = Rng(seed());
    // The killed parent's successor may still be exiting; wait for the lock.
    let mut store = loop {
        match Store::open(&dir) {
            Ok(s) => break s,
            Err(corral_domains::StoreError::Locked(_)) => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => panic!("{e}"),
        }
    };
    if store.model().get("host").is_err() {
        store
            .update(|m| {
                m.create(n("host"), Class::TemplateVM, None, "black")
                    .map(|_| ())
            })
            .unwrap();
    }
    loop {
        let names: Vec<String> = store
            .model()
            .qubes
            .iter()
            .filter(|(_, q)| q.class == Class::AppVM)
            .map(|(n, _)| n.to_string())
            .collect();
        let pick = |rng: &mut Rng| names[rng.below(names.len() as u64) as usize].clone();
        let fresh = format!("q{}", rng.below(1_000_000));
        match rng.below(5) {
            0 if names.len() < 12 => {
                // create, then give it a private volume, then record that it has one.
                let q = store.update(|m| {
                    m.create(n(&fresh), Class::AppVM, Some(n("host")), "blue")
                        .map(|q| q.qid)
                });
                let Ok(qid) = q else { continue };
                let private = store.volume_dir(qid).join("private");
                fs::create_dir_all(&private).unwrap();
                fs::write(private.join("stamp"), &fresh).unwrap();
                fs::File::open(private.join("stamp"))
                    .unwrap()
                    .sync_all()
                    .unwrap();
                corral_domains::store::fsync_dir(&private).unwrap();
                store
                    .update(|m| m.set_feature(&fresh, "stamp", Some(&fresh)))
                    .unwrap();
            }
            1 if !names.is_empty() && names.len() < 12 => {
                let src = pick(&mut rng);
                let _ = store.clone_qube(&src, n(&fresh));
            }
            2 if !names.is_empty() => {
                let old = pick(&mut rng);
                let _ = store.update(|m| m.rename(&old, n(&fresh)));
            }
            3 if !names.is_empty() => {
                let q = pick(&mut rng);
                let g = rng.below(1000) as u32;
                store
                    .update(|m| {
                        m.set_pref(&q, "memory", &(400 + g).to_string())?;
                        m.set_pref(&q, "vcpus", &(g % 8 + 1).to_string())?;
                        m.set_feature(&q, "gen", Some(&g.to_string()))
                    })
                    .unwrap();
            }
            4 if names.len() > 3 => {
                let q = pick(&mut rng);
                store.remove_qube(&q).unwrap();
            }
            _ => {}
        }
    }
}
