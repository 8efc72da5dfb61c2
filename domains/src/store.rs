//! The store: the model on disk, and the qubes' volumes.
//!
//! Layout under the data directory (`$XDG_DATA_HOME/corral/` by default):
//!
//! ```text
//! corral.json            the whole model (labels, globals, qubes), replaced atomically
//! corral.json.tmp        a write in progress (removed at open)
//! lock                   flock(2)-ed by the one owner
//! volumes/<qid>/root     a TemplateVM's or StandaloneVM's root tree
//! volumes/<qid>/private  a qube's persistent /home/user
//! volumes/.new-<qid>     a clone being copied (removed at open)
//! ```
//!
//! Every change writes the whole model to `corral.json.tmp`, fsyncs it, renames it over
//! `corral.json` and fsyncs the directory. A rename is atomic, so a reader (or the next start
//! after a crash) sees the old or the new model, never a mix. Volumes are named by qid, not by
//! name, so a rename is a record change only; a clone copies the volumes to a temporary name,
//! syncs and renames them before the record that refers to them is written; a remove writes the
//! record first and deletes the volumes after. A crash can therefore leave only volumes that no
//! record names, and those are removed at the next open.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use thiserror::Error;

use crate::model::{Model, ModelError};

const MODEL_FILE: &str = "corral.json";
const TMP_FILE: &str = "corral.json.tmp";
/// Largest model file the store will read.
pub const MAX_MODEL_BYTES: u64 = 64 << 20;

/// Why the store failed.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("the store at {0} is in use by another domain manager")]
    Locked(PathBuf),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is corrupt: {msg}")]
    Corrupt { path: PathBuf, msg: String },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// fsyncs a directory, making renames and creations in it durable.
pub fn fsync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_at(dir))
}

/// The one writer of the model and owner of the volumes.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    model: Model,
    _lock: File,
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, taking its lock. Fails if another process
    /// holds it. Cleans up what an interrupted write can leave behind.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        fs::create_dir_all(dir.join("volumes")).map_err(io_at(dir))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_at(&lock_path))?;
        match rustix::fs::flock(
            lock.as_fd(),
            rustix::fs::FlockOperation::NonBlockingLockExclusive,
        ) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => return Err(StoreError::Locked(dir.to_owned())),
            Err(e) => return Err(io_at(&lock_path)(e.into())),
        }
        let _ = fs::remove_file(dir.join(TMP_FILE));
        let path = dir.join(MODEL_FILE);
        let model = match File::open(&path) {
            Ok(f) => {
                let len = f.metadata().map_err(io_at(&path))?.len();
                if len > MAX_MODEL_BYTES {
                    return Err(StoreError::Corrupt {
                        path,
                        msg: format!("{len} bytes is more than {MAX_MODEL_BYTES}"),
                    });
                }
                let m: Model = serde_json::from_reader(io::BufReader::new(f)).map_err(|e| {
                    StoreError::Corrupt {
                        path: path.clone(),
                        msg: e.to_string(),
                    }
                })?;
                m.validate().map_err(|e| StoreError::Corrupt {
                    path: path.clone(),
                    msg: e.to_string(),
                })?;
                m
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Model::default(),
            Err(e) => return Err(io_at(&path)(e)),
        };
        let store = Store {
            dir: dir.to_owned(),
            model,
            _lock: lock,
        };
        store.collect_garbage()?;
        Ok(store)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The volume directory of qube `qid` (may not exist yet).
    pub fn volume_dir(&self, qid: u32) -> PathBuf {
        self.dir.join("volumes").join(qid.to_string())
    }

    /// Removes volumes no record names, and unfinished clones.
    fn collect_garbage(&self) -> Result<(), StoreError> {
        let vols = self.dir.join("volumes");
        let live: Vec<String> = self
            .model
            .qubes
            .values()
            .map(|q| q.qid.to_string())
            .collect();
        for entry in fs::read_dir(&vols).map_err(io_at(&vols))? {
            let entry = entry.map_err(io_at(&vols))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !live.contains(&name) {
                remove_tree(&entry.path())?;
            }
        }
        Ok(())
    }

    /// Applies `change` to a copy of the model, validates the result, writes it durably and
    /// only then makes it current. On any error the model is unchanged.
    pub fn update<T>(
        &mut self,
        change: impl FnOnce(&mut Model) -> Result<T, ModelError>,
    ) -> Result<T, StoreError> {
        let mut next = self.model.clone();
        let out = change(&mut next)?;
        next.validate()?;
        self.write(&next)?;
        self.model = next;
        Ok(out)
    }

    fn write(&self, model: &Model) -> Result<(), StoreError> {
        let tmp = self.dir.join(TMP_FILE);
        let mut text = serde_json::to_vec_pretty(model).expect("the model always serialises");
        text.push(b'\n');
        let mut f = File::create(&tmp).map_err(io_at(&tmp))?;
        f.write_all(&text).map_err(io_at(&tmp))?;
        f.sync_all().map_err(io_at(&tmp))?;
        drop(f);
        let path = self.dir.join(MODEL_FILE);
        fs::rename(&tmp, &path).map_err(io_at(&path))?;
        fsync_dir(&self.dir)
    }

    /// Clones qube `src` as `dst`: volumes first (copied under a temporary name, synced,
    /// renamed), then the record.
    pub fn clone_qube(&mut self, src: &str, dst: crate::QubeName) -> Result<u32, StoreError> {
        let mut probe = self.model.clone();
        let (old, new) = probe.clone_qube(src, dst.clone())?;
        probe.validate()?;
        let from = self.volume_dir(old);
        let to = self.volume_dir(new);
        if from.exists() {
            copy_tree_durably(&from, &to)?;
        }
        let got = self.update(|m| m.clone_qube(src, dst).map(|(_, n)| n))?;
        debug_assert_eq!(got, new);
        Ok(new)
    }

    /// Removes qube `name` (the model refuses while others depend on it): record first, then
    /// volumes.
    pub fn remove_qube(&mut self, name: &str) -> Result<(), StoreError> {
        let q = self.update(|m| m.remove(name))?;
        remove_tree(&self.volume_dir(q.qid))
    }
}

/// Removes a directory tree if present.
pub fn remove_tree(path: &Path) -> Result<(), StoreError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(io_at(path)),
        Ok(_) => fs::remove_file(path).map_err(io_at(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_at(path)(e)),
    }
}

/// Copies a tree (`cp -a`, which keeps owners, modes, links and device nodes) to a temporary
/// sibling, syncs the filesystem, and renames it to `to`.
pub fn copy_tree_durably(from: &Path, to: &Path) -> Result<(), StoreError> {
    let parent = to.parent().expect("volume paths have a parent");
    let tmp = parent.join(format!(
        ".new-{}",
        to.file_name().expect("named").to_string_lossy()
    ));
    remove_tree(&tmp)?;
    let mut cp = Command::new("cp");
    // SAFETY: the closure calls only async-signal-safe functions (sigprocmask, signal, prctl)
    // between fork and exec. It makes `cp` die with this thread, so a killed manager leaves no copier that
    // could write into the tree the next open collects.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cp, || {
            crate::sandbox::reset_signals();
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let status = cp
        .arg("-a")
        .arg("--reflink=auto")
        .arg("--")
        .arg(from)
        .arg(&tmp)
        .status()
        .map_err(io_at(from))?;
    if !status.success() {
        let _ = remove_tree(&tmp);
        return Err(io_at(from)(io::Error::other(format!(
            "cp -a failed: {status}"
        ))));
    }
    let d = File::open(&tmp).map_err(io_at(&tmp))?;
    rustix::fs::syncfs(d.as_fd()).map_err(|e| io_at(&tmp)(e.into()))?;
    fs::rename(&tmp, to).map_err(io_at(to))?;
    fsync_dir(parent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::QubeName;
    use crate::model::Class;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("corral-store-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn changes_survive_reopen_and_the_lock_excludes_a_second_owner() {
        let d = tmpdir("reopen");
        {
            let mut s = Store::open(&d).unwrap();
            assert!(matches!(Store::open(&d), Err(StoreError::Locked(_))));
            s.update(|m| {
                m.create(
                    QubeName::new("host").unwrap(),
                    Class::TemplateVM,
                    None,
                    "black",
                )
                .map(|_| ())
            })
            .unwrap();
            // A refused change leaves the model as it was.
            let e = s
                .update(|m| {
                    m.create(
                        QubeName::new("w").unwrap(),
                        Class::AppVM,
                        Some(QubeName::new("zz").unwrap()),
                        "red",
                    )
                    .map(|_| ())
                })
                .unwrap_err();
            assert_eq!(e.to_string(), "w: template zz does not exist");
            assert_eq!(s.model().qubes.len(), 1);
        }
        let s = Store::open(&d).unwrap();
        assert_eq!(s.model().qubes.len(), 1);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn orphan_volumes_and_temp_files_are_collected() {
        let d = tmpdir("gc");
        {
            let _s = Store::open(&d).unwrap();
        }
        fs::create_dir_all(d.join("volumes/77/private")).unwrap();
        fs::create_dir_all(d.join("volumes/.new-78")).unwrap();
        fs::write(d.join(TMP_FILE), b"{half").unwrap();
        let _s = Store::open(&d).unwrap();
        assert_eq!(fs::read_dir(d.join("volumes")).unwrap().count(), 0);
        assert!(!d.join(TMP_FILE).exists());
        drop(_s);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_corrupt_model_is_an_error_not_a_reset() {
        let d = tmpdir("corrupt");
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join(MODEL_FILE), b"{\"next_qid\": 1,").unwrap();
        assert!(matches!(Store::open(&d), Err(StoreError::Corrupt { .. })));
        fs::remove_dir_all(&d).unwrap();
    }
}
