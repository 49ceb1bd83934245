//! A spinner on stderr while a command waits on the network, shown only on a terminal.

use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// Spins until dropped; the line is cleared then.
pub struct Spinner(Option<tokio::task::JoinHandle<()>>);

impl Spinner {
    /// Shows `message` with a spinner in front, if stderr is a terminal.
    pub fn start(message: &str) -> Spinner {
        if !std::io::stderr().is_terminal() {
            return Spinner(None);
        }
        let message = message.to_owned();
        Spinner(Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            for frame in FRAMES.iter().cycle() {
                tick.tick().await;
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r{frame} {message}");
                let _ = err.flush();
            }
        })))
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}
