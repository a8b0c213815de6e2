//! Restart policies (`run --restart`): what docker's four words mean, when
//! a container that exited is started again, and how long to wait first.
//!
//! Plain values and decisions only: the detached monitor (`runtime::detach`)
//! acts on them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What happens when a container's command exits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never started again (docker's default).
    #[default]
    No,
    /// Started again after a non-zero exit, at most `max_retries` times
    /// (without limit when 0).
    OnFailure { max_retries: u32 },
    /// Started again after every exit.
    Always,
    /// As `Always`. docker tells them apart only when its daemon starts
    /// (an `unless-stopped` container that was stopped stays stopped);
    /// mydocker has no daemon, so after a reboot neither comes back.
    UnlessStopped,
}

/// The first wait before a restart; each restart in a row doubles it
/// (docker's 100 ms).
pub const FIRST_DELAY: Duration = Duration::from_millis(100);
/// The longest wait between restarts (docker's minute).
pub const LONGEST_DELAY: Duration = Duration::from_secs(60);
/// A run at least this long starts the delays over (docker's 10 s): a
/// container that served a while and then failed comes back quickly.
pub const RESET_AFTER: Duration = Duration::from_secs(10);

impl RestartPolicy {
    /// Parses docker's `no`, `on-failure[:N]`, `always` and `unless-stopped`.
    pub fn parse(text: &str) -> Result<RestartPolicy> {
        let invalid = |why: &str| Error::invalid("--restart", text, why.to_owned());
        match text.split_once(':') {
            None => match text {
                "no" => Ok(RestartPolicy::No),
                "on-failure" => Ok(RestartPolicy::OnFailure { max_retries: 0 }),
                "always" => Ok(RestartPolicy::Always),
                "unless-stopped" => Ok(RestartPolicy::UnlessStopped),
                _ => Err(invalid(
                    "expected no, on-failure[:MAX-RETRIES], always or unless-stopped",
                )),
            },
            Some(("on-failure", count)) => count
                .parse::<u32>()
                .map(|max_retries| RestartPolicy::OnFailure { max_retries })
                .map_err(|_| invalid("expected on-failure:N with N a whole number of retries")),
            Some(_) => Err(invalid(
                "only on-failure takes a count (on-failure:N); no, always and unless-stopped take none",
            )),
        }
    }

    /// The policy as docker writes it: `no`, `on-failure:3`, `always`.
    pub fn name(&self) -> String {
        match self {
            RestartPolicy::No => "no".into(),
            RestartPolicy::OnFailure { max_retries: 0 } => "on-failure".into(),
            RestartPolicy::OnFailure { max_retries } => format!("on-failure:{max_retries}"),
            RestartPolicy::Always => "always".into(),
            RestartPolicy::UnlessStopped => "unless-stopped".into(),
        }
    }

    /// docker's name without the count, and the count (`inspect`'s
    /// `HostConfig.RestartPolicy`).
    pub fn parts(&self) -> (&'static str, u32) {
        match self {
            RestartPolicy::No => ("no", 0),
            RestartPolicy::OnFailure { max_retries } => ("on-failure", *max_retries),
            RestartPolicy::Always => ("always", 0),
            RestartPolicy::UnlessStopped => ("unless-stopped", 0),
        }
    }

    pub fn is_no(&self) -> bool {
        *self == RestartPolicy::No
    }

    /// Whether a container that exited with `exit_code`, after `restarts`
    /// restarts by this policy since it was last started by hand, is
    /// started again. A container stopped by hand (`stop`, `kill`, `rm -f`)
    /// never is; the caller checks that first.
    pub fn restarts_after(&self, exit_code: i32, restarts: u32) -> bool {
        match *self {
            RestartPolicy::No => false,
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
            RestartPolicy::OnFailure { max_retries } => {
                exit_code != 0 && (max_retries == 0 || restarts < max_retries)
            }
        }
    }
}

/// How long to wait before the next restart, given the last wait (`None`
/// before the first) and how long the container ran this time.
pub fn next_delay(last: Option<Duration>, ran_for: Duration) -> Duration {
    match last {
        Some(last) if ran_for < RESET_AFTER => (last * 2).min(LONGEST_DELAY),
        _ => FIRST_DELAY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dockers_words_and_refuses_the_rest() {
        assert_eq!(RestartPolicy::parse("no").unwrap(), RestartPolicy::No);
        assert_eq!(
            RestartPolicy::parse("on-failure").unwrap(),
            RestartPolicy::OnFailure { max_retries: 0 }
        );
        assert_eq!(
            RestartPolicy::parse("on-failure:3").unwrap(),
            RestartPolicy::OnFailure { max_retries: 3 }
        );
        assert_eq!(
            RestartPolicy::parse("always").unwrap(),
            RestartPolicy::Always
        );
        assert_eq!(
            RestartPolicy::parse("unless-stopped").unwrap(),
            RestartPolicy::UnlessStopped
        );
        for bad in [
            "",
            "sometimes",
            "on-failure:x",
            "on-failure:-1",
            "always:2",
            "No",
        ] {
            let message = RestartPolicy::parse(bad).unwrap_err().to_string();
            assert!(message.contains(&format!("{bad:?}")), "{bad}: {message}");
        }
        for policy in [
            "no",
            "on-failure",
            "on-failure:3",
            "always",
            "unless-stopped",
        ] {
            assert_eq!(RestartPolicy::parse(policy).unwrap().name(), policy);
        }
    }

    #[test]
    fn on_failure_counts_its_retries_and_ignores_success() {
        let policy = RestartPolicy::OnFailure { max_retries: 2 };
        assert!(policy.restarts_after(1, 0));
        assert!(policy.restarts_after(137, 1));
        assert!(!policy.restarts_after(1, 2));
        assert!(!policy.restarts_after(0, 0));
        let unlimited = RestartPolicy::OnFailure { max_retries: 0 };
        assert!(unlimited.restarts_after(1, 10_000));
        assert!(RestartPolicy::Always.restarts_after(0, 10_000));
        assert!(RestartPolicy::UnlessStopped.restarts_after(0, 1));
        assert!(!RestartPolicy::No.restarts_after(1, 0));
    }

    #[test]
    fn delays_double_up_to_a_minute_and_start_over_after_a_long_run() {
        let short = Duration::from_secs(1);
        let mut delay = next_delay(None, short);
        assert_eq!(delay, FIRST_DELAY);
        delay = next_delay(Some(delay), short);
        assert_eq!(delay, Duration::from_millis(200));
        for _ in 0..20 {
            delay = next_delay(Some(delay), short);
        }
        assert_eq!(delay, LONGEST_DELAY);
        assert_eq!(next_delay(Some(delay), RESET_AFTER), FIRST_DELAY);
    }
}
