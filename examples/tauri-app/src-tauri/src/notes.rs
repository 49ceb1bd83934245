//! The app's own store, the source of truth: notes in `notes.json`, and the cursor up to which
//! notes from other devices have been merged in. Sync only ever adds to it.

use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tauri::State;

/// One note.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// Unique across devices (a random UUID from the device that wrote it).
    pub id: String,
    pub text: String,
    /// When it was written, Unix ms.
    pub at: u64,
}

#[derive(Default, Serialize, Deserialize)]
struct Saved {
    cursor: u64,
    notes: Vec<Note>,
}

/// The notes file, loaded once and written through on every change.
pub struct Notes {
    path: PathBuf,
    saved: Mutex<Saved>,
}

impl Notes {
    pub fn open(dir: PathBuf) -> std::io::Result<Notes> {
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("notes.json");
        let saved = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Saved::default(),
            Err(e) => return Err(e),
        };
        Ok(Notes { path, saved: Mutex::new(saved) })
    }

    /// Adds the notes not known yet (by id) and moves the cursor forward; returns every note,
    /// oldest first.
    fn merge(&self, notes: Vec<Note>, cursor: Option<u64>) -> Result<Vec<Note>, String> {
        let mut saved = self.saved.lock().map_err(|_| "notes store poisoned".to_owned())?;
        for note in notes {
            if !saved.notes.iter().any(|n| n.id == note.id) {
                saved.notes.push(note);
            }
        }
        saved.notes.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        if let Some(cursor) = cursor {
            saved.cursor = saved.cursor.max(cursor);
        }
        // Write a new file and rename it over the old one: a crash leaves one or the other.
        let temp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(&*saved).map_err(|e| e.to_string())?;
        std::fs::write(&temp, bytes).and_then(|()| std::fs::rename(&temp, &self.path)).map_err(|e| e.to_string())?;
        Ok(saved.notes.clone())
    }
}

#[tauri::command]
pub fn notes_list(notes: State<'_, Notes>) -> Result<Vec<Note>, String> {
    notes.merge(Vec::new(), None)
}

/// Saves a note written on this device (before any attempt to sync it).
#[tauri::command]
pub fn notes_add(notes: State<'_, Notes>, note: Note) -> Result<Vec<Note>, String> {
    notes.merge(vec![note], None)
}

/// Merges notes pulled from other devices, up to `cursor`.
#[tauri::command]
pub fn notes_merge(notes: State<'_, Notes>, incoming: Vec<Note>, cursor: u64) -> Result<Vec<Note>, String> {
    notes.merge(incoming, Some(cursor))
}

/// The cursor up to which other devices' notes are merged.
#[tauri::command]
pub fn notes_cursor(notes: State<'_, Notes>) -> Result<u64, String> {
    Ok(notes.saved.lock().map_err(|_| "notes store poisoned".to_owned())?.cursor)
}
