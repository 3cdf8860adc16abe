//! Waiting for the task of an `Async.` call (`cli_operations.ml` `waiter`, `cli_util.ml` `track`)
//! and showing its `progress`: xe's bar (a line per update on stderr) when the command line has
//! `progress`, and a bar redrawn in place when stderr is a terminal. The task is destroyed once it
//! has ended, whatever its outcome.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use serde_json::Value as Json;

use super::api::s;
use super::failure::XeError;
use super::Ctx;

/// How often a running task is asked for its status.
const POLL: Duration = Duration::from_millis(200);

/// How the bar is drawn.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Bar {
    None,
    /// xe's `progress` parameter: `"\r %3d%% %c ####"` and a newline per update.
    Xe,
    /// A terminal: one line redrawn in place.
    Terminal,
}

impl Bar {
    /// The bar for a command line: xe's with `progress`, a terminal's when stderr is one, none
    /// with `--minimal`.
    pub fn choose(progress_param: bool, minimal: bool) -> Bar {
        if minimal {
            Bar::None
        } else if progress_param {
            Bar::Xe
        } else if std::io::stderr().is_terminal() {
            Bar::Terminal
        } else {
            Bar::None
        }
    }
}

/// xe's line for progress `p` (0.0–1.0).
pub fn xe_line(p: f64) -> String {
    let pct = (p * 100.0) as i64;
    let spinner = ['|', '/', '-', '\\'][pct.rem_euclid(4) as usize];
    format!("\r {pct:3}% {spinner} {}", "#".repeat((p * 70.0).max(0.0) as usize))
}

fn terminal_line(p: f64) -> String {
    let width = 50usize;
    let done = ((p * width as f64) as usize).min(width);
    format!("\r[{}{}] {:3}%", "#".repeat(done), " ".repeat(width - done), (p * 100.0) as i64)
}

/// Waits for `task` to end and destroys it; answers its result (the XML-RPC value text) on
/// success, its error on failure, TASK_CANCELLED when cancelled.
pub fn wait(ctx: &mut Ctx, task: &str, bar: Bar) -> Result<String, XeError> {
    let outcome = track(ctx, task, bar);
    let _ = ctx.api.call("task.destroy", vec![s(task)]);
    outcome
}

fn track(ctx: &mut Ctx, task: &str, bar: Bar) -> Result<String, XeError> {
    let mut last_drawn: Option<i64> = None;
    let mut first = true;
    loop {
        let record = ctx.api.call("task.get_record", vec![s(task)])?;
        let status = record.get("status").and_then(Json::as_str).unwrap_or("pending").to_string();
        let progress = record.get("progress").and_then(Json::as_f64).unwrap_or(0.0);
        // xe draws nothing for a task that had already ended when first asked.
        if !(first && status != "pending") {
            let pct = (progress * 100.0) as i64;
            if last_drawn != Some(pct) {
                draw(bar, progress);
                last_drawn = Some(pct);
            }
        }
        first = false;
        match status.as_str() {
            "pending" => std::thread::sleep(POLL),
            "success" => {
                finish(bar, last_drawn.is_some());
                return Ok(record.get("result").and_then(Json::as_str).unwrap_or("").to_string());
            }
            "cancelling" | "cancelled" => {
                finish(bar, last_drawn.is_some());
                return Err(XeError::api("TASK_CANCELLED", &[task]));
            }
            _ => {
                finish(bar, last_drawn.is_some());
                let info: Vec<String> = record
                    .get("error_info")
                    .and_then(Json::as_array)
                    .map(|a| a.iter().map(|v| v.as_str().unwrap_or("").to_string()).collect())
                    .unwrap_or_default();
                return match info.split_first() {
                    Some((code, params)) => Err(XeError::Api { code: code.clone(), params: params.to_vec() }),
                    None => Err(XeError::api(
                        "INTERNAL_ERROR",
                        &[&format!("Failure: Task failed but no error recorded: {task}")],
                    )),
                };
            }
        }
    }
}

fn draw(bar: Bar, p: f64) {
    let mut err = std::io::stderr().lock();
    let _ = match bar {
        Bar::None => Ok(()),
        Bar::Xe => writeln!(err, "{}", xe_line(p)),
        Bar::Terminal => write!(err, "{}", terminal_line(p)),
    };
    let _ = err.flush();
}

fn finish(bar: Bar, drew: bool) {
    let mut err = std::io::stderr().lock();
    let _ = match bar {
        Bar::Xe if drew => writeln!(err, "\n"),
        Bar::Terminal if drew => writeln!(err),
        _ => Ok(()),
    };
}

/// The ref inside a task's `result` (`<value>OpaqueRef:…</value>`).
pub fn result_ref(result: &str) -> String {
    let inner = result.trim().trim_start_matches("<value>").trim_end_matches("</value>");
    inner.trim_start_matches("<string>").trim_end_matches("</string>").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xe_bar_is_percent_spinner_and_hashes() {
        assert_eq!(xe_line(0.5), format!("\r  50% - {}", "#".repeat(35)));
        assert_eq!(xe_line(1.0), format!("\r 100% | {}", "#".repeat(70)));
        assert_eq!(result_ref("<value>OpaqueRef:abc</value>"), "OpaqueRef:abc");
    }
}
