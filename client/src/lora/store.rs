//! The trigger's durable state, `.otavan/lora.json`: the LoRaWAN session
//! (keys and frame counters), the scheduler's state, the last update
//! result and the multicast groups, replaced atomically through the
//! meter's [`Storage`].

use std::io;

use lorawan_device::DevEui;
use lorawan_device::async_device::Session;
use otavan_protocol::lora::OtaResult;
use serde::{Deserialize, Serialize};

use super::multicast::GroupsState;
use super::schedule::SchedulerState;
use crate::path::MeterPath;
use crate::storage::{Storage, write_atomic};

/// Where the trigger's state lives in the meter's storage.
pub fn lora_file() -> MeterPath {
    MeterPath::state("lora.json")
}

/// What survives a restart.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Saved {
    /// The device the session belongs to: a session saved for another
    /// DevEUI is not restored.
    #[serde(default)]
    pub dev_eui: Option<DevEui>,
    /// The joined session (`None`: join first).
    #[serde(default)]
    pub session: Option<Session>,
    /// Scheduled session and seen campaigns.
    #[serde(default)]
    pub scheduler: SchedulerState,
    /// The last update result's code ([`OtaResult::code`]).
    #[serde(default)]
    pub last_result: u8,
    /// A STATUS uplink is owed (asked for, or a result not yet reported).
    #[serde(default)]
    pub status_due: bool,
    /// Multicast groups and their class C windows (left out of the file
    /// when there are none, so a meter without groups writes what it did
    /// before multicast).
    #[serde(default, skip_serializing_if = "GroupsState::is_empty")]
    pub multicast: GroupsState,
}

impl Saved {
    /// The saved state; the default (nothing joined, nothing seen) when the
    /// file does not exist.
    ///
    /// # Errors
    ///
    /// The storage's errors, and `InvalidData` for a corrupt file.
    pub fn load(storage: &dyn Storage) -> io::Result<Saved> {
        let bytes = match storage.read(&lora_file()) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Saved::default()),
            Err(e) => return Err(e),
        };
        serde_json::from_slice(&bytes).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("corrupt {}: {e}", lora_file()),
            )
        })
    }

    /// Replaces the saved state atomically.
    ///
    /// # Errors
    ///
    /// The storage's errors.
    pub fn save(&self, storage: &dyn Storage) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(self).expect("the trigger's state serialises");
        write_atomic(storage, &lora_file(), &json)
    }

    /// The last result as an [`OtaResult`].
    pub fn last_result(&self) -> OtaResult {
        OtaResult::from_code(self.last_result)
    }
}

#[cfg(test)]
mod tests {
    use lorawan_device::{AppSKey, DevAddr, NewSKey};

    use super::*;
    use crate::storage::DirStorage;

    #[test]
    fn round_trips_and_missing_is_fresh() {
        let dir = tempfile::TempDir::new().unwrap();
        std::fs::create_dir(dir.path().join(".otavan")).unwrap();
        let storage = DirStorage::new(dir.path()).unwrap();
        let fresh = Saved::load(&storage).unwrap();
        assert!(fresh.session.is_none() && fresh.dev_eui.is_none());
        assert_eq!(fresh.last_result(), OtaResult::None);

        let mut session = Session::new(
            NewSKey::from([1; 16]),
            AppSKey::from([2; 16]),
            DevAddr::new([1, 2, 3, 4]).unwrap(),
        );
        session.fcnt_up = 41;
        session.fcnt_down = 3;
        let saved = Saved {
            dev_eui: Some(DevEui::from([9; 8])),
            session: Some(session),
            scheduler: SchedulerState::default(),
            last_result: OtaResult::Updated.code(),
            status_due: true,
            multicast: GroupsState::default(),
        };
        saved.save(&storage).unwrap();
        let back = Saved::load(&storage).unwrap();
        assert_eq!(back.dev_eui, Some(DevEui::from([9; 8])));
        let back_session = back.session.clone().unwrap();
        assert_eq!((back_session.fcnt_up, back_session.fcnt_down), (41, 3));
        assert_eq!(back_session.devaddr(), &DevAddr::new([1, 2, 3, 4]).unwrap());
        assert_eq!(back.last_result(), OtaResult::Updated);
        assert!(back.status_due);

        std::fs::write(dir.path().join(".otavan/lora.json"), b"{not json").unwrap();
        let error = Saved::load(&storage).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }
}
