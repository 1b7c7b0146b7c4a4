//! Download progress: an `indicatif` bar per file when stderr is a terminal, nothing
//! extra otherwise (the `tracing` logs say what happened).

use std::io::IsTerminal;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use mirror_core::settings::MirrorSettings;
use mirror_core::transport::HttpTransport;

/// The HTTP transport for a sync, with progress bars when attached to a terminal.
pub fn transport(settings: &MirrorSettings) -> Result<HttpTransport> {
    let t = settings.http_transport()?;
    if !std::io::stderr().is_terminal() {
        return Ok(t);
    }
    let style =
        ProgressStyle::with_template("{msg:>24} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    let mut current: Option<(String, ProgressBar)> = None;
    Ok(t.with_progress(Box::new(move |file, received, total| {
        let same = current.as_ref().is_some_and(|(f, _)| f == file);
        if !same {
            if let Some((_, bar)) = current.take() {
                bar.finish();
            }
            let bar = ProgressBar::new(total.unwrap_or(0)).with_style(style.clone());
            bar.set_message(file.to_owned());
            current = Some((file.to_owned(), bar));
        }
        if let Some((_, bar)) = &current {
            if let Some(t) = total {
                bar.set_length(t);
            }
            bar.set_position(received);
            if total.is_some_and(|t| received >= t) {
                bar.finish();
            }
        }
    })))
}
