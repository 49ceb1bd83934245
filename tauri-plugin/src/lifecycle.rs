//! App lifecycle → sync (the table is in the crate docs). Nothing here blocks the app, except
//! exit, which waits at most [`FLUSH_BUDGET`].

use tauri::{AppHandle, Emitter, RunEvent, Runtime, WindowEvent};

use crate::SyncExt;
use crate::events;
use crate::handle::FLUSH_BUDGET;

pub(crate) fn on_event<R: Runtime>(app: &AppHandle<R>, event: &RunEvent) {
    match event {
        RunEvent::Ready => in_background(app, Step::Launch),
        RunEvent::WindowEvent { event: WindowEvent::Focused(true), .. } => in_background(app, Step::Resume),
        #[cfg(mobile)]
        RunEvent::WindowEvent { event: WindowEvent::Resumed, .. } => in_background(app, Step::Resume),
        #[cfg(mobile)]
        RunEvent::WindowEvent { event: WindowEvent::Suspended, .. } => in_background(app, Step::Pause),
        RunEvent::Exit => {
            let app = app.clone();
            tauri::async_runtime::block_on(async move {
                let _ = tokio::time::timeout(FLUSH_BUDGET, app.sync().app_exiting()).await;
            });
        }
        _ => {}
    }
}

enum Step {
    Launch,
    Resume,
    #[cfg_attr(desktop, allow(dead_code))]
    Pause,
}

/// Runs a lifecycle step without waiting for it; a failure becomes a `sync://error` event.
fn in_background<R: Runtime>(app: &AppHandle<R>, step: Step) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let sync = app.sync();
        let outcome = match step {
            Step::Launch => sync.app_launched().await,
            Step::Resume => sync.app_resumed().await,
            Step::Pause => sync.app_paused().await,
        };
        if let Err(e) = outcome {
            let _ = app.emit(events::ERROR, e.to_sync_error());
        }
    });
}
