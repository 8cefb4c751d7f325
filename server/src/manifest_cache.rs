//! Rendered manifests kept for one index, within a byte budget whatever
//! clients send.
//!
//! Both parts of a manifest's key come from the request (`current_ver` and
//! the Host), so neither may multiply entries:
//! - a version with a folder (or a descriptor) has its own entry, keyed by
//!   its exact text, as does the full install (no `current_ver`): at most
//!   one per folder;
//! - every other version gets the same full-install file lists; what can
//!   still differ is whether it gets the firmware and which image it runs
//!   (its patch), so such versions share one entry per [`BaseClass`], split
//!   around its `previous_version` value, which is spliced back in per
//!   request (the answer is byte for byte what rendering would give);
//! - at most [`MAX_FOREIGN_HOSTS`] Host values besides the server's own
//!   addresses get entries.
//!
//! Past the budget or the Host cap a manifest is still correct, just
//! rendered per request; at most [`MAX_UNCACHED`] such renders are in
//! flight at once (each holds its manifest until its socket has taken it),
//! so a flood of them costs time, not memory.
//!
//! The cache lives and dies with its index, so a reload never serves a stale
//! manifest.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use otavan_protocol::Version;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::index::ReleaseIndex;
use crate::manifest::{UP_TO_DATE, build, render};

/// Host values other than the server's own addresses that get entries.
pub const MAX_FOREIGN_HOSTS: usize = 4;

/// Uncached manifests in flight at once; more get 503 and retry.
pub const MAX_UNCACHED: usize = 8;

/// The default budget: a 1,000-file release's full manifest is about
/// 0.5 MiB, so this holds every entry of a release with a dozen version
/// folders for the van's address and a few Host spellings.
pub const DEFAULT_BUDGET: usize = 32 * 1024 * 1024;

/// What a version without a folder gets, besides the full-install file
/// lists: the image it runs (which patch applies) and whether the target's
/// image is above it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BaseClass {
    runs: Option<Version>,
    gets_firmware: bool,
}

/// Where an answer's body came from, for the manifest metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Kept from an earlier request (or the fixed "up to date" body):
    /// nothing was rendered.
    Cache,
    /// Rendered for this request (and kept, unless the answer is
    /// [`Answer::Uncached`]).
    Rendered,
}

/// A manifest answer, ready to send.
#[derive(Debug)]
pub enum Answer {
    /// The whole body.
    Whole(Bytes, Source),
    /// A shared manifest with this request's `previous_version` spliced in:
    /// the parts in order.
    Spliced([Bytes; 3], Source),
    /// Rendered for this request only; the permit bounds how many are held.
    Uncached(Bytes, OwnedSemaphorePermit),
    /// Too many uncached manifests in flight: try again shortly.
    Busy,
}

impl Answer {
    /// The body's length.
    pub fn len(&self) -> usize {
        match self {
            Answer::Whole(body, _) | Answer::Uncached(body, _) => body.len(),
            Answer::Spliced(parts, _) => parts.iter().map(Bytes::len).sum(),
            Answer::Busy => 0,
        }
    }

    /// Where the body came from; [`Answer::Uncached`] is rendered and
    /// [`Answer::Busy`] has none.
    pub fn source(&self) -> Option<Source> {
        match self {
            Answer::Whole(_, source) | Answer::Spliced(_, source) => Some(*source),
            Answer::Uncached(..) => Some(Source::Rendered),
            Answer::Busy => None,
        }
    }

    /// Whether the body is empty (only [`Answer::Busy`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Manifests rendered for one index (see the module docs).
#[derive(Debug)]
pub struct ManifestCache {
    budget: usize,
    inner: RwLock<Entries>,
    uncached: Arc<Semaphore>,
}

#[derive(Debug, Default)]
struct Entries {
    hosts: HashMap<String, HostEntries>,
    foreign_hosts: usize,
    bytes: usize,
}

#[derive(Debug, Default)]
struct HostEntries {
    /// By the exact `current_ver` (empty for a full install).
    known: HashMap<String, Bytes>,
    /// Shared by versions without a folder: the body before and after the
    /// `previous_version` string.
    shared: HashMap<BaseClass, (Bytes, Bytes)>,
}

/// Stands for the base version while a shared manifest is rendered; a JSON
/// string with control characters, which no URL in a manifest contains.
const BASE_MARKER: &str = "\u{0}otavan-base\u{0}";

impl ManifestCache {
    /// An empty cache holding at most `budget` bytes of manifests.
    pub fn new(budget: usize) -> ManifestCache {
        ManifestCache {
            budget,
            inner: RwLock::new(Entries::default()),
            uncached: Arc::new(Semaphore::new(MAX_UNCACHED)),
        }
    }

    /// A manifest rendered earlier for the exact `current` text (empty for
    /// none) and `host`, if it has its own entry. Allocates nothing.
    pub fn cached(&self, current: &str, host: &str) -> Option<Bytes> {
        let entries = self.inner.read().expect("cache lock");
        entries.hosts.get(host)?.known.get(current).cloned()
    }

    /// Bytes held by cached manifests.
    pub fn bytes(&self) -> usize {
        self.inner.read().expect("cache lock").bytes
    }

    /// The manifest for a meter at `current` asking through `host`;
    /// `own_host` says the Host is one of the server's own addresses.
    pub fn answer(
        &self,
        index: &ReleaseIndex,
        current: Option<&Version>,
        host: &str,
        own_host: bool,
    ) -> Answer {
        let target = index.target();
        let Some(base) = current else {
            return self.known(index, None, host, own_host);
        };
        if base >= target {
            return Answer::Whole(Bytes::from_static(UP_TO_DATE), Source::Cache);
        }
        if index.version(base).is_some() || index.descriptors().contains_key(base) {
            return self.known(index, current, host, own_host);
        }
        let class = BaseClass {
            runs: index.firmware_for(base).map(|(v, _)| v.clone()),
            gets_firmware: index.firmware_for(target).is_some_and(|(v, _)| v > base),
        };
        let quoted = Bytes::from(serde_json::to_vec(base.as_str()).expect("string serialises"));
        let hit = {
            let entries = self.inner.read().expect("cache lock");
            entries
                .hosts
                .get(host)
                .and_then(|h| h.shared.get(&class).cloned())
        };
        if let Some((head, tail)) = hit {
            return Answer::Spliced([head, quoted, tail], Source::Cache);
        }
        let mut manifest = build(index, current, host).expect("below the target");
        manifest.previous_version = Some(BASE_MARKER.to_owned());
        let body = render(Some(&manifest));
        let marker = serde_json::to_vec(BASE_MARKER).expect("string serialises");
        let at = body
            .windows(marker.len())
            .rposition(|w| w == marker.as_slice())
            .expect("the marker is in the body");
        let head = body.slice(..at);
        let tail = body.slice(at + marker.len()..);
        let kept = self.insert(host, own_host, head.len() + tail.len(), |h| {
            let old = h.shared.insert(class, (head.clone(), tail.clone()));
            old.map_or(0, |(a, b)| a.len() + b.len())
        });
        if kept {
            return Answer::Spliced([head, quoted, tail], Source::Rendered);
        }
        let mut whole = Vec::with_capacity(head.len() + quoted.len() + tail.len());
        for part in [&head, &quoted, &tail] {
            whole.extend_from_slice(part);
        }
        self.uncached_answer(Bytes::from(whole))
    }

    fn known(
        &self,
        index: &ReleaseIndex,
        current: Option<&Version>,
        host: &str,
        own_host: bool,
    ) -> Answer {
        let key = current.map_or("", Version::as_str);
        if let Some(body) = self.cached(key, host) {
            return Answer::Whole(body, Source::Cache);
        }
        let body = render(build(index, current, host).as_ref());
        let kept = self.insert(host, own_host, body.len(), |h| {
            let old = h.known.insert(key.to_owned(), body.clone());
            old.map_or(0, |old| old.len())
        });
        match kept {
            true => Answer::Whole(body, Source::Rendered),
            false => self.uncached_answer(body),
        }
    }

    /// Runs `put` on `host`'s entries and counts `size` bytes, less the
    /// size of the entry `put` replaced (two requests may render the same
    /// manifest at once), if the Host may have entries and the budget has
    /// room.
    fn insert(
        &self,
        host: &str,
        own_host: bool,
        size: usize,
        put: impl FnOnce(&mut HostEntries) -> usize,
    ) -> bool {
        let mut entries = self.inner.write().expect("cache lock");
        if entries.bytes + size > self.budget {
            return false;
        }
        if !entries.hosts.contains_key(host) {
            if !own_host {
                if entries.foreign_hosts >= MAX_FOREIGN_HOSTS {
                    return false;
                }
                entries.foreign_hosts += 1;
            }
            entries
                .hosts
                .insert(host.to_owned(), HostEntries::default());
        }
        let replaced = put(entries.hosts.get_mut(host).expect("inserted above"));
        entries.bytes = entries.bytes + size - replaced;
        true
    }

    fn uncached_answer(&self, body: Bytes) -> Answer {
        match Arc::clone(&self.uncached).try_acquire_owned() {
            Ok(permit) => Answer::Uncached(body, permit),
            Err(_) => Answer::Busy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> (tempfile::TempDir, ReleaseIndex) {
        let root = tempfile::TempDir::new().unwrap();
        let files: &[(&str, &[u8])] = &[
            ("1.0.0/flash/main.py", b"one"),
            ("2.0.0/flash/main.py", b"two"),
            ("2.0.0/flash/lib/a.py", b"a"),
            ("firmware_1.5.0.bin", b"image 1.5"),
            ("firmware_0.5.0.bin", b"image 0.5"),
        ];
        for (path, content) in files {
            let path = root.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        let index = ReleaseIndex::build(root.path(), None, &[]).unwrap();
        (root, index)
    }

    fn body(answer: Answer) -> Vec<u8> {
        match answer {
            Answer::Whole(b, _) | Answer::Uncached(b, _) => b.to_vec(),
            Answer::Spliced(parts, _) => parts.concat(),
            Answer::Busy => panic!("busy"),
        }
    }

    /// Shared entries answer byte for byte what rendering gives, for
    /// versions below, between and above the firmware images, from cache
    /// and fresh.
    #[test]
    fn shared_entries_give_the_rendered_bytes() {
        let (_root, index) = index();
        let cache = ManifestCache::new(DEFAULT_BUDGET);
        for text in [
            "0.1",
            "1.2.0",
            "1.5.0",
            "1.7.3-rc.1",
            "1.9.9",
            "0.2",
            "1.6",
            "3.0.0",
        ] {
            let version = Version::parse(text).unwrap();
            let expected = render(build(&index, Some(&version), "van:8000").as_ref());
            for round in 0..2 {
                let got = body(cache.answer(&index, Some(&version), "van:8000", false));
                assert_eq!(got, expected.to_vec(), "{text}, round {round}");
            }
        }
        // Below 0.5.0 (no image to patch from), from 0.5.0 (its patch
        // source), and at or above 1.5.0, the target's image (no
        // firmware): three classes.
        let entries = cache.inner.read().unwrap();
        assert_eq!(entries.hosts["van:8000"].shared.len(), 3);
    }

    /// The first answer for a key is rendered, the next ones come from the
    /// cache, for own entries and shared ones; "up to date" is never
    /// rendered.
    #[test]
    fn answers_say_whether_they_were_rendered() {
        let (_root, index) = index();
        let cache = ManifestCache::new(DEFAULT_BUDGET);
        for text in ["1.0.0", "1.2.0"] {
            let version = Version::parse(text).unwrap();
            let sources: Vec<_> = (0..3)
                .map(|_| cache.answer(&index, Some(&version), "van", true).source())
                .collect();
            let expected = [Source::Rendered, Source::Cache, Source::Cache].map(Some);
            assert_eq!(sources, expected, "{text}");
        }
        let top = Version::parse("2.0.0").unwrap();
        let answer = cache.answer(&index, Some(&top), "van", true);
        assert_eq!(answer.source(), Some(Source::Cache));
        let full = ManifestCache::new(0);
        let uncached = full.answer(&index, None, "van", true);
        assert!(matches!(uncached, Answer::Uncached(..)));
        assert_eq!(uncached.source(), Some(Source::Rendered));
    }

    #[test]
    fn foreign_hosts_are_capped_but_own_addresses_are_not() {
        let (_root, index) = index();
        let cache = ManifestCache::new(DEFAULT_BUDGET);
        let base = Version::parse("1.0.0").unwrap();
        for n in 0..MAX_FOREIGN_HOSTS + 3 {
            let host = format!("h{n}");
            let answer = cache.answer(&index, Some(&base), &host, false);
            let cached = matches!(answer, Answer::Whole(..));
            assert_eq!(cached, n < MAX_FOREIGN_HOSTS, "host {n}");
        }
        let own = cache.answer(&index, Some(&base), "10.0.0.1:8000", true);
        assert!(matches!(own, Answer::Whole(..)));
        assert!(cache.cached("1.0.0", "10.0.0.1:8000").is_some());
    }

    #[test]
    fn uncached_answers_in_flight_are_bounded() {
        let (_root, index) = index();
        let cache = ManifestCache::new(0);
        let held: Vec<Answer> = (0..MAX_UNCACHED)
            .map(|_| cache.answer(&index, None, "van", true))
            .collect();
        assert!(held.iter().all(|a| matches!(a, Answer::Uncached(..))));
        assert!(matches!(
            cache.answer(&index, None, "van", true),
            Answer::Busy
        ));
        drop(held);
        assert!(matches!(
            cache.answer(&index, None, "van", true),
            Answer::Uncached(..)
        ));
    }
}
